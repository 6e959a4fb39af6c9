"""Kubernetes resource quantities (``k8s.io/apimachinery/pkg/api/resource``).

Parses the quantity strings used for device capacity and resource requests
("40Gi", "81559Mi", "1.5", "100m", "1e3") into an exact rational value and
compares them exactly, with the same results as the Go ``resource.Quantity``:

* the same grammar, including its oddities (``"."``, ``"-"`` and ``"Gi"``
  parse as zero, ``"1."`` is accepted);
* the same value: numbers that fit Go's int64 fast path are exact, the others
  are rounded up (away from zero) to a multiple of 1e-9, exactly as
  ``ParseQuantity`` does;
* the same cap: a value with a binary suffix (``Ki`` ... ``Ei``) whose
  magnitude exceeds the int64 maximum is capped at it (``8Ei`` equals
  ``10Ei``, ``-16Ei`` is ``-(2**63 - 1)``), while decimal suffixes and
  exponents are never capped (``1e20`` stays 1e20);
* the same answer to "is this an integer" (``is_integer``), which in Go
  depends on the internal representation (``1000m`` is not an integer there).

Pure code: no I/O.  Invalid strings raise ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import total_ordering

__all__ = ["Quantity"]

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_NANO = Fraction(1, 10**9)
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")

# suffix -> (base, exponent)
_SUFFIXES: dict[str, tuple[int, int]] = {
    "": (10, 0),
    "n": (10, -9),
    "u": (10, -6),
    "m": (10, -3),
    "k": (10, 3),
    "M": (10, 6),
    "G": (10, 9),
    "T": (10, 12),
    "P": (10, 15),
    "E": (10, 18),
    "Ki": (2, 10),
    "Mi": (2, 20),
    "Gi": (2, 30),
    "Ti": (2, 40),
    "Pi": (2, 50),
    "Ei": (2, 60),
}


def _split(text: str) -> tuple[bool, str, str, str]:
    """Split into (positive, numerator digits, fraction digits, suffix) like Go does."""
    positive = True
    pos = 0
    end = len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(f"quantity {text!r} does not match the expected format")
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str, text: str) -> tuple[int, int]:
    known = _SUFFIXES.get(suffix)
    if known is not None:
        return known
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        digits = rest[1:] if rest[0] in "+-" else rest
        if digits and all(c in _DIGITS for c in digits):
            exponent = int(rest)
            if _INT64_MIN <= exponent <= _INT64_MAX:
                return 10, exponent
    raise ValueError(f"quantity {text!r} has an unknown suffix {suffix!r}")


def _parse(text: str) -> tuple[Fraction, bool]:
    """Return (value, fits Go's int64 representation as an integer)."""
    if not text:
        raise ValueError("quantity must not be empty")
    positive, num, denom, suffix = _split(text)
    base, exponent = _interpret(suffix, text)
    sign = 1 if positive else -1
    digits = int(num + denom)
    # Go's fast path: an int64 mantissa with a base-10 scale >= -9.
    if base == 10:
        fast = 18 - (len(num) + len(denom)) >= 0
        scale = exponent - len(denom)
        if fast and scale >= -9:
            value = sign * digits
            if scale >= 0:
                exact = Fraction(value * 10**scale)
                is_int = _INT64_MIN <= value * 10**scale <= _INT64_MAX if scale > 0 else True
                return exact, is_int
            return Fraction(value, 10**-scale), False
    elif exponent >= 0 and not denom:
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        product = digits << exponent
        if precision >= 0 and product <= _INT64_MAX:
            return Fraction(sign * product), True
    # Go's slow path: arbitrary precision, rounded up to nano.
    magnitude = Fraction(digits, 10 ** len(denom)) * Fraction(base) ** exponent
    if magnitude:
        units = magnitude / _NANO
        rounded = -((-units.numerator) // units.denominator)
        magnitude = rounded * _NANO
    if base == 2 and magnitude > _INT64_MAX:
        # ParseQuantity caps binary-suffix magnitudes at the int64 maximum.
        magnitude = Fraction(_INT64_MAX)
    return sign * magnitude, False


@total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class Quantity:
    """An exact Kubernetes quantity.  Equality and ordering are by value."""

    text: str
    value: Fraction = field(init=False, repr=False)
    is_integer: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        value, is_int = _parse(self.text)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "is_integer", is_int)

    @staticmethod
    def parse(text: str) -> Quantity:
        """Parse ``text``; raise ``ValueError`` when it is not a valid quantity."""
        return Quantity(text)

    @staticmethod
    def is_valid(text: str) -> bool:
        try:
            _parse(text)
        except ValueError:
            return False
        return True

    @staticmethod
    def from_value(value: Fraction, is_integer: bool) -> Quantity:
        """Build a quantity from an exact value (used for arithmetic results)."""
        result = object.__new__(Quantity)
        object.__setattr__(result, "text", str(value))
        object.__setattr__(result, "value", value)
        object.__setattr__(result, "is_integer", is_integer)
        return result

    def compare_to(self, other: Quantity) -> int:
        """-1, 0 or 1 as this quantity is less than, equal to or greater than ``other``."""
        return (self.value > other.value) - (self.value < other.value)

    def sign(self) -> int:
        return (self.value > 0) - (self.value < 0)

    def as_integer(self) -> int:
        """The integer value; raise ``ValueError`` where Go's ``AsInt64`` fails."""
        if not self.is_integer:
            raise ValueError("cannot convert value to integer")
        return int(self.value)

    def as_approximate_float(self) -> float:
        return float(self.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value == other.value

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return self.text
