"""Condition types and reasons shared by every service, as named constants.

A condition message names the object and field a person must change. Helpers
here build conditions as plain dicts in the Kubernetes `metav1.Condition`
shape, with the time passed in, so pure code stays clock-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

Status = Literal["True", "False", "Unknown"]

# Types
READY = "Ready"
SYNCED = "Synced"
SCHEDULED = "Scheduled"

# Reasons (CamelCase, as Kubernetes expects)
ALL_REPLICAS_PLACED = "AllReplicasPlaced"
REPLICAS_UNSCHEDULABLE = "ReplicasUnschedulable"
INVALID_SPEC = "InvalidSpec"
INVALID_SELECTOR = "InvalidSelector"
CACHE_NOT_FOUND = "CacheNotFound"
CLASS_NOT_FOUND = "ClassNotFound"


def merge(
    previous: Sequence[Mapping[str, object]], wanted: Sequence[dict[str, object]]
) -> list[dict[str, object]]:
    """`wanted` conditions, keeping each one's previous `lastTransitionTime` when its status
    did not change, and any previous condition of another type untouched (another writer's)."""
    before = {str(c.get("type")): c for c in previous}
    merged: list[dict[str, object]] = []
    for new in wanted:
        old = before.pop(str(new["type"]), None)
        if old is not None and old.get("status") == new["status"]:
            merged.append({**new, "lastTransitionTime": old.get("lastTransitionTime")})
        else:
            merged.append(new)
    merged.extend(dict(c) for c in before.values())
    return sorted(merged, key=lambda c: str(c["type"]))


def condition(
    type_: str,
    status: Status,
    reason: str,
    message: str,
    observed_generation: int,
    now: str,
) -> dict[str, object]:
    """A `metav1.Condition` as a dict; `now` is an RFC 3339 timestamp supplied by the caller."""
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": observed_generation,
        "lastTransitionTime": now,
    }
