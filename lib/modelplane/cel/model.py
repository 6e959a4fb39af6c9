"""The data model of DRA device selectors: devices, attributes, verdicts, errors.

Everything here is an immutable, hashable value so that (selector, device)
pairs can be memoized.  A device mirrors one entry of a ResourceSlice:
attribute and capacity keys are either bare names (whose domain is the
device's driver) or ``domain/name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Attribute", "AttributeKind", "Device", "SelectorError", "Verdict"]

AttributeKind = Literal["string", "bool", "int", "version"]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One typed attribute value; a version is its string form, e.g. "9.0.0"."""

    kind: AttributeKind
    value: str | bool | int


@dataclass(frozen=True, slots=True)
class Device:
    """The selector's view of a device: driver, attributes and capacity.

    ``attributes`` and ``capacity`` are (key, value) pairs sorted by key.
    """

    driver: str
    attributes: tuple[tuple[str, Attribute], ...] = ()
    capacity: tuple[tuple[str, str], ...] = ()


class SelectorError(ValueError):
    """A selector expression does not compile; ``str(e)`` is a one-line message."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a device matches; ``reason`` says why evaluation failed, if it did."""

    matched: bool
    reason: str | None = None
