"""What one fleet-scheduler pass changes, decided from the observed objects (pure).

`decide` places every ModelDeployment with `modelplane.scheduling.offline.plan`,
the same entry point the gRPC API and `modelplane schedule`/`explain` call (so
`explain` answers what this pass decided; the live loop only lets `plan` reuse
the validation of object versions it has already seen), and returns:

- `apply`: the ModelReplicas to create or update (a retained replica whose
  rendering changed, e.g. an edited template that still fits its pinned pool,
  is updated in place; unchanged ones are left alone);
- `delete`: the replicas the core dropped (scale-down removes the highest
  indices first; a replica whose pinned pool no longer fits is re-placed as a
  delete plus a create), except those deleted already (a deletionTimestamp,
  endpoint-manager's finalizer pending): each is deleted once, not on every pass;
- `status`: each deployment's new status (counts, scale selector, conditions,
  `observedGeneration`) where it changed;
- `problems`: observed objects other than deployments that failed validation
  and were left out (for the log).

`plan` places oldest first, skips deployments being deleted (their replicas go
with them through owner references) and treats InferenceClusters being deleted
as absent (their replicas are placed elsewhere while cluster-provisioner's
finalizer keeps the cluster reachable for their drain). A deployment with a user
error (bad CEL, missing cache) is held: its replicas stay exactly as they are
and its conditions say what to fix. Ready replicas are counted per (namespace,
name). Replica names derive from deployment, cluster and index, so a pass
repeated after a crash converges instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.api.validation import validate
from modelplane.scheduling.offline import Validate, being_deleted, plan
from modelplane.scheduling.status import deployment_status
from modelplane.wellknown import Json

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    apply: tuple[Json, ...] = ()
    delete: tuple[tuple[str, str], ...] = ()
    status: tuple[tuple[str, str, Json], ...] = ()
    problems: tuple[str, ...] = ()


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", "default"), meta["name"]


def _deleted_already(existing: Mapping[tuple[str, str], Obj], namespace: str, name: str) -> bool:
    """Whether replica `namespace/name` is deleted already, its finalizer pending (another
    delete would change nothing)."""
    replica = existing.get((namespace, name))
    return replica is not None and being_deleted(replica)


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


def decide(objects: Sequence[Obj], now: str, validator: Validate = validate) -> Decision:
    """`validator` goes to `plan` (the live loop gives a `validated.ValidationCache`)."""
    result = plan(objects, offline=False, validator=validator)
    deployments = {_key(o): o for o in objects if o.get("kind") == "ModelDeployment"}
    replicas = [o for o in objects if o.get("kind") == "ModelReplica"]
    existing = {_key(r): r for r in replicas}
    ready = {_key(r) for r in replicas if _ready(r)}
    apply: list[Json] = []
    delete: list[tuple[str, str]] = []
    status: list[tuple[str, str, Json]] = []
    for report in result.deployments:
        namespace, name = report.namespace, report.name
        placement = report.placement
        deployment = deployments.get((namespace, name))
        if placement is None or deployment is None:
            continue
        if placement.error is None:
            for wanted in report.manifests:
                if _changed(existing.get(_key(wanted)), wanted):
                    apply.append(wanted)
            delete += [
                (namespace, r.replica.name)
                for r in placement.removed
                if r.replica.name and not _deleted_already(existing, namespace, r.replica.name)
            ]
        new = deployment_status(
            placement,
            generation=int(deployment["metadata"].get("generation", 1)),
            ready_replicas=ready,
            previous_conditions=(deployment.get("status") or {}).get("conditions") or [],
            now=now,
        )
        if new != (deployment.get("status") or {}):
            status.append((namespace, name, new))
    return Decision(tuple(apply), tuple(delete), tuple(status), result.problems)
