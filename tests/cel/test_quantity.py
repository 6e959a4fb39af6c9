"""Table-driven tests of modelplane.quantity parsing and comparison."""

from __future__ import annotations

from fractions import Fraction

import pytest
from modelplane.quantity import Quantity

PARSES = [
    ("a plain integer is exact", "132", Fraction(132)),
    ("a binary gibibyte is 2**30", "1Gi", Fraction(2**30)),
    ("a mebibyte count is exact", "81559Mi", Fraction(81559 * 2**20)),
    ("a decimal kilo is 1000", "1k", Fraction(1000)),
    ("a decimal exponent is a power of ten", "1e3", Fraction(1000)),
    ("an upper-case E alone is the exa suffix", "1E", Fraction(10**18)),
    ("a negative exponent makes a fraction", "1E-3", Fraction(1, 1000)),
    ("a signed positive exponent is accepted", "2e+2", Fraction(200)),
    ("milli is a thousandth", "250m", Fraction(1, 4)),
    ("a fraction with a binary suffix is exact", "0.5Gi", Fraction(2**29)),
    ("a fraction with a decimal suffix is exact", "3.5G", Fraction(3_500_000_000)),
    ("a leading minus negates", "-1Ki", Fraction(-1024)),
    ("a leading plus is accepted", "+5", Fraction(5)),
    ("nano is the smallest unit", "1n", Fraction(1, 10**9)),
    ("sub-nano values round up to one nano", "0.1n", Fraction(1, 10**9)),
    ("negative sub-nano values round away from zero", "-0.1n", Fraction(-1, 10**9)),
    ("a lone dot parses as zero like Go", ".", Fraction(0)),
    ("a bare suffix parses as zero like Go", "Gi", Fraction(0)),
    ("a trailing dot is accepted", "1.", Fraction(1)),
    ("huge plain values are not capped", "100000000000000000000", Fraction(10**20)),
    ("huge decimal-suffix values are not capped", "10E", Fraction(10**19)),
    ("huge exponent values are not capped", "1e30", Fraction(10**30)),
    ("exbibytes use the slow path exactly", "2Ei", Fraction(2**61)),
    ("the largest uncapped exbibyte count is exact", "7Ei", Fraction(7 * 2**60)),
    ("8Ei overflows int64 and is capped at its maximum", "8Ei", Fraction(2**63 - 1)),
    ("16Ei is capped at the int64 maximum", "16Ei", Fraction(2**63 - 1)),
    ("a fractional exbibyte over the cap is capped", "8.5Ei", Fraction(2**63 - 1)),
    ("a fractional exbibyte under the cap is exact", "1.5Ei", Fraction(3 * 2**59)),
    ("a huge pebibyte count is capped", "8192Pi", Fraction(2**63 - 1)),
    ("a huge kibibyte count is capped", "9007199254740992Ki", Fraction(2**63 - 1)),
    ("a negative capped value keeps its sign", "-16Ei", Fraction(-(2**63 - 1))),
]

INVALID = [
    ("an empty string is invalid", ""),
    ("an unknown suffix is invalid", "1Gb"),
    ("a lower-case binary kilo is invalid", "1ki"),
    ("a lone exponent marker is invalid", "1e"),
    ("two dots are invalid", "1.2.3"),
    ("inner whitespace is invalid", "1 Gi"),
    ("an exponent combined with a suffix is invalid", "1e3Ki"),
    ("a trailing letter after digits is invalid", "5x"),
]

ORDER = [
    ("81559Mi is less than 80Gi", "81559Mi", "80Gi", -1),
    ("81559Mi is more than 80G", "81559Mi", "80G", 1),
    ("1k is less than 1Ki", "1k", "1Ki", -1),
    ("0.5Gi equals 512Mi", "0.5Gi", "512Mi", 0),
    ("1000m equals 1", "1000m", "1", 0),
    ("1e3 equals 1k", "1e3", "1k", 0),
    ("a negative is below zero", "-1n", "0", -1),
]

INTEGERS = [
    ("a plain integer is an integer", "64", True),
    ("a positive-scale decimal is an integer", "1k", True),
    ("1000m is not an integer in Go's representation", "1000m", False),
    ("a fractional binary is not an integer", "1.5Gi", False),
    ("an int64 overflow is not an integer", "1e20", False),
    ("a capped binary value is not an integer", "16Ei", False),
]


@pytest.mark.parametrize(("text", "value"), [c[1:] for c in PARSES], ids=[c[0] for c in PARSES])
def test_parses_exactly(text: str, value: Fraction) -> None:
    assert Quantity.parse(text).value == value


@pytest.mark.parametrize("text", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        Quantity.parse(text)
    assert not Quantity.is_valid(text)


@pytest.mark.parametrize(("a", "b", "order"), [c[1:] for c in ORDER], ids=[c[0] for c in ORDER])
def test_compares_like_kubernetes(a: str, b: str, order: int) -> None:
    left, right = Quantity.parse(a), Quantity.parse(b)
    assert left.compare_to(right) == order
    assert right.compare_to(left) == -order
    assert (left == right) == (order == 0)
    assert (left < right) == (order < 0)
    if order == 0:
        assert hash(left) == hash(right)


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in INTEGERS], ids=[c[0] for c in INTEGERS]
)
def test_is_integer_matches_go_representation(text: str, expected: bool) -> None:
    quantity = Quantity.parse(text)
    assert quantity.is_integer is expected
    if not expected:
        with pytest.raises(ValueError, match="cannot convert"):
            quantity.as_integer()
