"""Loading of the differential-test inputs: devices, hand-written corpus, generated cases.

Guarantees: every case has a unique name (its id), an expression, a device
name that exists in devices.yaml and the pinned expected outcome (``want``:
match, no match, compile error or runtime error), or ``None`` when a
generated case is not pinned yet (generated.yaml is stale: run
``python -m tests.cel.pin``); the generated part is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from modelplane.cel import Attribute, AttributeKind, Device

from tests.cel.generator import generate

__all__ = [
    "GENERATED_COUNT",
    "OUTCOMES",
    "SEED",
    "Case",
    "all_cases",
    "divergences",
    "go_device",
    "py_device",
]

HERE = Path(__file__).parent
SEED = 20260514
GENERATED_COUNT = 700
OUTCOMES = frozenset({"match", "no match", "compile error", "runtime error"})


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    device: str
    expression: str
    want: str | None = None


def _load(name: str) -> Any:
    with (HERE / name).open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def devices() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = _load("devices.yaml")
    return loaded


def hand_written() -> list[Case]:
    return [
        Case(str(c["name"]), str(c.get("device", "h100")), str(c["expr"]), c.get("want"))
        for c in _load("corpus.yaml")["cases"]
    ]


def _pinned_generated() -> dict[tuple[str, str, str], str]:
    path = HERE / "generated.yaml"
    if not path.exists():
        return {}
    entries = (_load("generated.yaml") or {}).get("cases") or []
    return {(str(e["name"]), str(e["device"]), str(e["expr"])): str(e["want"]) for e in entries}


def all_cases() -> list[Case]:
    cases = hand_written()
    pinned = _pinned_generated()
    cases += [Case(n, d, e, pinned.get((n, d, e))) for n, d, e in generate(GENERATED_COUNT, SEED)]
    names = [c.name for c in cases]
    if len(names) != len(set(names)):
        raise ValueError("case names must be unique")
    return cases


def divergences() -> dict[str, tuple[str, str]]:
    """Case name -> (reason, our outcome) for each documented divergence."""
    entries = _load("divergences.yaml") or {}
    return {
        str(e["name"]): (str(e["reason"]), str(e["ours"])) for e in entries.get("divergences") or []
    }


def py_device(spec: dict[str, Any]) -> Device:
    attributes: list[tuple[str, Attribute]] = []
    for key, typed in (spec.get("attributes") or {}).items():
        ((kind, value),) = typed.items()
        kind_name: AttributeKind = kind
        attributes.append((str(key), Attribute(kind_name, value)))
    capacity = [(str(k), str(v)) for k, v in (spec.get("capacity") or {}).items()]
    return Device(str(spec["driver"]), tuple(sorted(attributes)), tuple(sorted(capacity)))


def go_device(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "driver": spec["driver"],
        "attributes": spec.get("attributes") or {},
        "capacity": {k: str(v) for k, v in (spec.get("capacity") or {}).items()},
    }
