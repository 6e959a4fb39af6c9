"""Holding an InferenceCluster's deletion until its replicas have drained (pure: no I/O).

cluster-provisioner keeps `FINALIZER` on every InferenceCluster. When one is
deleted, fleet-scheduler stops counting it (a terminating cluster is absent for
placement), so it deletes that cluster's ModelReplicas and places them
elsewhere; endpoint-manager withdraws each one's ModelEndpoint, lets it drain and
tears its workload down through the Fleet API, which keeps working while the
InferenceCluster exists. `finalizer_action` releases the finalizer once no
ModelReplica names the cluster, at once when the cluster cannot be reached
(nothing can be torn down there; endpoint-manager then releases those replicas
without teardown), and at the latest `HOLD_LIMIT_S` after the deletion began,
so a stuck replica never blocks a cluster's removal for good (`hold_ends_in`
says when that falls due).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Mapping
from typing import Any

FINALIZER = "modelplane.ai/cluster-provisioner"
HOLD_LIMIT_S = 300.0


class Action(enum.Enum):
    KEEP = "keep"
    ADD = "add"
    RELEASE = "release"


def replicas_by_cluster(replicas: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many ModelReplicas (terminating ones included: they are still draining) name
    each cluster."""
    counts: dict[str, int] = {}
    for replica in replicas:
        name = (replica.get("spec") or {}).get("clusterName")
        if name:
            counts[name] = counts.get(name, 0) + 1
    return counts


def deletion_started(cluster: Mapping[str, Any]) -> datetime.datetime | None:
    stamp = cluster["metadata"].get("deletionTimestamp")
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def finalizer_action(
    cluster: Mapping[str, Any], replicas: int, reachable: bool, now: datetime.datetime
) -> Action:
    """What to do with our finalizer on `cluster`, which `replicas` ModelReplicas name."""
    held = FINALIZER in (cluster["metadata"].get("finalizers") or [])
    started = deletion_started(cluster)
    if started is None:
        return Action.KEEP if held else Action.ADD
    if not held:
        return Action.KEEP
    expired = (now - started).total_seconds() >= HOLD_LIMIT_S
    return Action.RELEASE if replicas == 0 or not reachable or expired else Action.KEEP


def hold_ends_in(cluster: Mapping[str, Any], now: datetime.datetime) -> float | None:
    """Seconds until a deleted cluster's finalizer is released whatever is left on it
    (`HOLD_LIMIT_S` after its deletion began); None for a cluster not being deleted."""
    started = deletion_started(cluster)
    if started is None:
        return None
    return max(0.0, HOLD_LIMIT_S - (now - started).total_seconds())


def draining_message(cluster: Mapping[str, Any], replicas: int) -> str:
    name = f"InferenceCluster/{cluster['metadata']['name']}"
    if replicas == 0:
        return f"{name} is being deleted; no ModelReplica is left on it"
    return (
        f"{name} is being deleted; waiting for {replicas} ModelReplica(s) to drain "
        f"(at most {HOLD_LIMIT_S:g}s)"
    )
