"""Semantic versions as the Kubernetes CEL ``semver`` library sees them.

Kubernetes (``k8s.io/apiserver/pkg/cel/library/semverlib.go``, used by the DRA
device-selector environment) parses versions with ``github.com/blang/semver/v4``
``Parse``: strictly ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``, no leading
``v``, no leading zeros in numeric parts, numbers must fit in uint64.  The
two-argument CEL form ``semver(s, true)`` first *normalizes* (strips one
leading ``v``, strips leading zeros, fills a missing minor/patch with 0);
``SemVer.parse(s, normalize=True)`` does the same.

Ordering follows semver 2.0: a prerelease sorts before its release,
prerelease identifiers compare numerically when numeric, numeric sorts before
alphanumeric, a longer identifier list wins a tie; build metadata is ignored
(so ``1.0.0+a == 1.0.0+b``).  Pure code, no I/O; invalid input raises
``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import total_ordering

__all__ = ["SemVer"]

_UINT64_MAX = 2**64 - 1
_DIGITS = frozenset("0123456789")
_ALPHANUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")

PreRelease = tuple[int | str, ...]


def _number(part: str, what: str, text: str) -> int:
    if not all(c in _DIGITS for c in part):
        raise ValueError(f"invalid character(s) in {what} number of version {text!r}")
    if len(part) > 1 and part[0] == "0":
        raise ValueError(f"{what} number of version {text!r} must not have leading zeros")
    if not part or int(part) > _UINT64_MAX:
        raise ValueError(f"invalid {what} number in version {text!r}")
    return int(part)


def _prerelease_part(part: str, text: str) -> int | str:
    if not part:
        raise ValueError(f"empty prerelease identifier in version {text!r}")
    if all(c in _DIGITS for c in part):
        return _number(part, "prerelease", text)
    if not all(c in _ALPHANUM for c in part):
        raise ValueError(f"invalid character(s) in prerelease of version {text!r}")
    return part


def _parse_strict(text: str) -> tuple[int, int, int, PreRelease, tuple[str, ...]]:
    if not text:
        raise ValueError("version string is empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise ValueError(f"version {text!r} has no MAJOR.MINOR.PATCH")
    major = _number(parts[0], "major", text)
    minor = _number(parts[1], "minor", text)
    rest = parts[2]
    pre_index = rest.find("-")
    build_index = rest.find("+")
    cut = len(rest)
    if pre_index != -1 and build_index != -1:
        cut = min(pre_index, build_index)
    elif pre_index != -1:
        cut = pre_index
    elif build_index != -1:
        cut = build_index
    patch = _number(rest[:cut], "patch", text)
    pre: PreRelease = ()
    if pre_index != -1 and (build_index == -1 or pre_index < build_index):
        pre_text = rest[pre_index + 1 : build_index if build_index != -1 else len(rest)]
        pre = tuple(_prerelease_part(p, text) for p in pre_text.split("."))
    build: tuple[str, ...] = ()
    if build_index != -1:
        build = tuple(rest[build_index + 1 :].split("."))
        for b in build:
            if not b:
                raise ValueError(f"empty build metadata in version {text!r}")
            if not all(c in _ALPHANUM for c in b):
                raise ValueError(f"invalid character(s) in build metadata of version {text!r}")
    return major, minor, patch, pre, build


def _normalize(text: str) -> str:
    text = text.removeprefix("v")
    parts = text.split(".", 2)
    for i, part in enumerate(parts):
        if len(part) > 1:
            stripped = part.lstrip("0")
            if not stripped or stripped[0] not in _DIGITS:
                stripped = "0" + stripped
            parts[i] = stripped
    if len(parts) < 3:
        if any(c in parts[-1] for c in "+-"):
            raise ValueError("short version cannot contain prerelease/build metadata")
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def _compare_pre(a: PreRelease, b: PreRelease) -> int:
    if not a and not b:
        return 0
    if not a:
        return 1
    if not b:
        return -1
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        if isinstance(x, int) and isinstance(y, int):
            return -1 if x < y else 1
        if isinstance(x, int):
            return -1
        if isinstance(y, int):
            return 1
        return -1 if x < y else 1
    return (len(a) > len(b)) - (len(a) < len(b))


@total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class SemVer:
    """A parsed version.  Equality, ordering and hashing ignore build metadata."""

    major: int
    minor: int
    patch: int
    prerelease: PreRelease = ()
    build: tuple[str, ...] = field(default=())

    @staticmethod
    def parse(text: str, normalize: bool = False) -> SemVer:
        """Parse like blang/semver ``Parse``; with ``normalize`` like CEL ``semver(s, true)``."""
        source = _normalize(text) if normalize else text
        return SemVer(*_parse_strict(source))

    @staticmethod
    def is_valid(text: str, normalize: bool = False) -> bool:
        try:
            SemVer.parse(text, normalize)
        except ValueError:
            return False
        return True

    def compare_to(self, other: SemVer) -> int:
        """-1, 0 or 1 per semver 2.0 precedence."""
        mine = (self.major, self.minor, self.patch)
        theirs = (other.major, other.minor, other.patch)
        if mine != theirs:
            return -1 if mine < theirs else 1
        return _compare_pre(self.prerelease, other.prerelease)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self.compare_to(other) == 0

    def __lt__(self, other: SemVer) -> bool:
        return self.compare_to(other) < 0

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.prerelease))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text
