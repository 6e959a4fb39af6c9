"""The ModelDeployment status the fleet-scheduler writes, computed from a placement.

Pure: the time comes in as an argument and previous conditions come in as data,
so the same inputs give the same status. Counts answer the first questions a
user asks (`kubectl get md`: ready out of desired); conditions say how many
replicas are missing and why, including a partial shortfall, and a user error
(bad CEL, missing cache, invalid spec) names the field while placed replicas stay.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from modelplane import conditions as c
from modelplane.naming import deployment_selector
from modelplane.scheduling.model import Placement

MAX_REASONS_IN_MESSAGE = 5


def _error_reason(error: str) -> str:
    if error.startswith("spec.modelCacheRef"):
        return c.CACHE_NOT_FOUND
    if ".selectors[" in error and ".cel: " in error:
        return c.INVALID_SELECTOR
    return c.INVALID_SPEC


def _naming_the_object(placement: Placement) -> str:
    """The error with the deployment named once in front (most errors name it already)."""
    error = placement.error or ""
    name = f"ModelDeployment {placement.namespace}/{placement.name}"
    return error if error.startswith(name) else f"{name}: {error}"


def _scheduled(placement: Placement) -> tuple[c.Status, str, str]:
    placed, desired = len(placement.replicas), placement.desired
    if placement.error is not None:
        return (
            "False",
            _error_reason(placement.error),
            f"{_naming_the_object(placement)}; the {placed} placed replicas are kept as they are",
        )
    if placement.unscheduled == 0:
        return "True", c.ALL_REPLICAS_PLACED, f"{min(placed, desired)} of {desired} replicas placed"
    shown = list(placement.reasons[:MAX_REASONS_IN_MESSAGE])
    more = len(placement.reasons) - len(shown)
    if more > 0:
        shown.append(f"and {more} more clusters")
    return (
        "False",
        c.REPLICAS_UNSCHEDULABLE,
        (f"{placement.unscheduled} of {desired} replicas fit nowhere: " + "; ".join(shown)),
    )


def deployment_status(
    placement: Placement,
    *,
    generation: int,
    ready_replicas: Collection[tuple[str, str]],
    previous_conditions: Sequence[Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    """`status` for the ModelDeployment of `placement`.

    `ready_replicas` holds the (namespace, name) of every ModelReplica whose Ready
    condition is True (names alone repeat across namespaces); `now`
    is an RFC 3339 timestamp used only for conditions whose status changes.
    """
    placed = len(placement.replicas)
    ready = sum(1 for r in placement.replicas if (placement.namespace, r.name) in ready_replicas)
    status, reason, message = _scheduled(placement)
    if placement.desired == 0:
        ready_condition: tuple[c.Status, str, str] = ("True", "ScaledToZero", "scaled to zero")
    elif ready >= placement.desired:
        ready_condition = ("True", "AllReplicasReady", f"{ready} of {placement.desired} ready")
    else:
        ready_condition = ("False", "ReplicasNotReady", f"{ready} of {placement.desired} ready")
    wanted = [
        c.condition(c.SCHEDULED, status, reason, message, generation, now),
        c.condition(c.READY, *ready_condition, generation, now),
    ]
    return {
        "desiredReplicas": placement.desired,
        "replicas": placed,
        "readyReplicas": ready,
        "selector": deployment_selector(placement.name),
        "observedGeneration": generation,
        "conditions": c.merge(previous_conditions, wanted),
    }
