"""What one fleet-scheduler pass changes, decided from the observed objects (pure).

`decide` places every ModelDeployment, oldest first (so capacity goes to those
that were there before), with the scheduler core, and returns:

- `apply`: the ModelReplicas to create or update (a retained replica whose
  rendering changed, e.g. an edited template that still fits its pinned pool,
  is updated in place; unchanged ones are left alone);
- `delete`: the replicas the core dropped (scale-down removes the highest
  indices first);
- `status`: each deployment's new status (counts, scale selector, conditions,
  `observedGeneration`) where it changed.

A deployment with a user error (bad CEL, missing cache) is held: its replicas
stay exactly as they are and its conditions say what to fix. A deployment being
deleted is skipped (its replicas go with it through owner references). An
InferenceCluster being deleted counts as absent: its replicas are dropped and
placed elsewhere while cluster-provisioner's finalizer keeps the cluster
reachable for their drain. Replica
names derive from deployment, cluster and index, so a pass repeated after a
crash converges instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.scheduling import snapshot
from modelplane.scheduling.core import Session
from modelplane.scheduling.model import Fleet
from modelplane.scheduling.render import model_replica
from modelplane.scheduling.status import deployment_status
from modelplane.wellknown import Json

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    apply: tuple[Json, ...] = ()
    delete: tuple[tuple[str, str], ...] = ()
    status: tuple[tuple[str, str, Json], ...] = ()


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", "default"), meta["name"]


def _ready(replica: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (replica.get("status") or {}).get("conditions") or []
    )


def _changed(existing: Obj | None, wanted: Obj) -> bool:
    if existing is None:
        return True
    meta, want = existing["metadata"], wanted["metadata"]
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in want.get("labels", {}).items()):
        return True
    if want.get("ownerReferences") and meta.get("ownerReferences") != want["ownerReferences"]:
        return True
    return bool(existing.get("spec") != wanted["spec"])


def _age(obj: Obj) -> tuple[str, str, str]:
    namespace, name = _key(obj)
    return obj["metadata"].get("creationTimestamp", ""), namespace, name


def decide(objects: Sequence[Obj], now: str) -> Decision:
    kinds = snapshot.by_kind(objects)
    replicas = kinds.get("ModelReplica", [])
    fleet = Fleet(
        clusters=tuple(
            snapshot.cluster(o, offline=False)
            for o in kinds.get("InferenceCluster", [])
            if not o["metadata"].get("deletionTimestamp")  # being deleted: drain, place elsewhere
        ),
        classes={c.name: c for c in map(snapshot.hardware_class, kinds.get("InferenceClass", []))},
        replicas=tuple(snapshot.replica(o) for o in replicas),
        caches={(c.namespace, c.name): c for c in map(snapshot.cache, kinds.get("ModelCache", []))},
    )
    session = Session(fleet)
    existing = {_key(r): r for r in replicas}
    ready = {r["metadata"]["name"] for r in replicas if _ready(r)}
    apply: list[Json] = []
    delete: list[tuple[str, str]] = []
    status: list[tuple[str, str, Json]] = []
    deployments = [
        d for d in kinds.get("ModelDeployment", []) if not d["metadata"].get("deletionTimestamp")
    ]
    for deployment in sorted(deployments, key=_age):
        namespace, name = _key(deployment)
        placement = session.place(snapshot.deployment(deployment))
        if placement.error is None:
            for placed in placement.replicas:
                wanted = model_replica(deployment, placed)
                if _changed(existing.get(_key(wanted)), wanted):
                    apply.append(wanted)
            delete += [(namespace, r.replica.name) for r in placement.removed if r.replica.name]
        new = deployment_status(
            placement,
            generation=int(deployment["metadata"].get("generation", 1)),
            ready_replicas=ready,
            previous_conditions=(deployment.get("status") or {}).get("conditions") or [],
            now=now,
        )
        if new != (deployment.get("status") or {}):
            status.append((namespace, name, new))
    return Decision(tuple(apply), tuple(delete), tuple(status))
