"""Table-driven tests of modelplane.semver parsing and ordering."""

from __future__ import annotations

import pytest
from modelplane.semver import SemVer

VALID = [
    ("a plain release parses", "9.0.0", False, (9, 0, 0, ())),
    ("prerelease identifiers are split", "1.2.3-rc.10", False, (1, 2, 3, ("rc", 10))),
    ("build metadata is kept aside", "1.2.3-beta.1+build.5", False, (1, 2, 3, ("beta", 1))),
    ("a hyphen inside build metadata is not a prerelease", "1.0.0+b-1", False, (1, 0, 0, ())),
    ("normalizing strips a leading v", "v1.2.3", True, (1, 2, 3, ())),
    ("normalizing fills a missing minor and patch", "2", True, (2, 0, 0, ())),
    ("normalizing strips leading zeros", "01.002.0003", True, (1, 2, 3, ())),
]

INVALID = [
    ("an empty string is invalid", "", False),
    ("a leading v is invalid without normalizing", "v1.0.0", False),
    ("a short version is invalid without normalizing", "1.0", False),
    ("leading zeros are invalid", "01.2.3", False),
    ("a numeric prerelease with a leading zero is invalid", "1.0.0-01", False),
    ("an empty prerelease identifier is invalid", "1.0.0-a..b", False),
    ("empty build metadata is invalid", "1.0.0+", False),
    ("an underscore is invalid", "1.0.0-a_b", False),
    ("a number beyond uint64 is invalid", "18446744073709551616.0.0", False),
    ("a short version with a prerelease is invalid even normalized", "1.0-alpha", True),
]

ORDER = [
    ("a prerelease sorts before its release", "1.0.0-alpha", "1.0.0", -1),
    ("numeric identifiers compare numerically", "1.0.0-beta.2", "1.0.0-beta.11", -1),
    ("numeric identifiers sort before alphanumeric", "1.0.0-1", "1.0.0-alpha", -1),
    ("a longer prerelease wins a tie", "1.0.0-alpha", "1.0.0-alpha.1", -1),
    ("minor versions compare numerically", "1.10.0", "1.9.0", 1),
    ("build metadata is ignored", "1.0.0+a", "1.0.0+b", 0),
    ("alphanumeric identifiers compare in ASCII order", "1.0.0-B", "1.0.0-a", -1),
]


@pytest.mark.parametrize(
    ("text", "normalize", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID]
)
def test_parses(text: str, normalize: bool, expected: tuple[object, ...]) -> None:
    version = SemVer.parse(text, normalize)
    assert (version.major, version.minor, version.patch, version.prerelease) == expected


@pytest.mark.parametrize(
    ("text", "normalize"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_rejects(text: str, normalize: bool) -> None:
    with pytest.raises(ValueError):
        SemVer.parse(text, normalize)
    assert not SemVer.is_valid(text, normalize)


@pytest.mark.parametrize(("a", "b", "order"), [c[1:] for c in ORDER], ids=[c[0] for c in ORDER])
def test_orders_per_semver_2(a: str, b: str, order: int) -> None:
    left, right = SemVer.parse(a), SemVer.parse(b)
    assert left.compare_to(right) == order
    assert right.compare_to(left) == -order
    assert (left == right) == (order == 0)
    assert (left < right) == (order < 0)
    if order == 0:
        assert hash(left) == hash(right)
