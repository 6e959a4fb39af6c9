"""Condition types and reasons shared by every service, as named constants.

A condition message names the object and field a person must change. Helpers
here build conditions as plain dicts in the Kubernetes `metav1.Condition`
shape, with the time passed in, so pure code stays clock-free.
"""

from __future__ import annotations

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
