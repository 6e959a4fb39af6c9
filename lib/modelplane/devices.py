"""A device as Kubernetes writes it (ResourceSlice entries, InferenceClass devices) -> the
CEL selector's `Device`: typed attributes (`string`, `bool`, `int`, `version`) and
capacity quantities, sorted by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.cel import Attribute, AttributeKind, Device

ATTRIBUTE_KINDS: tuple[AttributeKind, ...] = ("string", "bool", "int", "version")


def selector_device(
    driver: str,
    attributes: Mapping[str, Mapping[str, Any]] | None,
    capacity: Mapping[str, Mapping[str, Any]] | None,
) -> Device:
    typed = []
    for key, value in (attributes or {}).items():
        kind = next(k for k in ATTRIBUTE_KINDS if k in value)
        typed.append((key, Attribute(kind, value[kind])))
    quantities = [(key, str(value["value"])) for key, value in (capacity or {}).items()]
    return Device(driver, tuple(sorted(typed)), tuple(sorted(quantities)))
