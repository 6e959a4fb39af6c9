"""`plan(objects)`: the one scheduling entry point, from API objects to placements.

The running fleet-scheduler's reconcile, its `Schedule`/`Explain` gRPC API and
`modelplane schedule`/`explain` all call `plan`, so `explain` answers exactly
what the running scheduler decided on the same objects.

Objects are validated against the CRDs' own schemas and rules first. A
ModelDeployment that fails validation, or whose CEL does not compile, gets an
`error` and keeps the replicas it has; other invalid objects are reported
separately and left out. An InferenceCluster being deleted (`deletionTimestamp`)
counts as absent, so its replicas are placed elsewhere; a ModelDeployment being
deleted is not placed (its replicas go with it) but its replicas still hold
capacity. Deployments are placed oldest first (`metadata.creationTimestamp`);
those without one (offline input) follow in input order. Each placement consumes
capacity the next one sees. With `offline`, an InferenceCluster without any
status counts as Ready, because offline input has none; a status, when given, is
judged exactly as the running scheduler judges it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelplane.api.validation import validate
from modelplane.scheduling import snapshot
from modelplane.scheduling.core import Session
from modelplane.scheduling.model import Fleet, Placement
from modelplane.scheduling.render import model_replica

SCHEDULING_KINDS = (
    "InferenceClass",
    "InferenceCluster",
    "ModelCache",
    "ModelReplica",
    "ModelDeployment",
)


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    index: int
    cluster: str
    engines: Mapping[str, str]
    retained: bool
    why: str
    name: str


@dataclass(frozen=True, slots=True)
class RemovedReport:
    name: str
    index: int
    cluster: str
    why: str


@dataclass(frozen=True, slots=True)
class DeploymentReport:
    namespace: str
    name: str
    desired_replicas: int
    replicas: tuple[ReplicaReport, ...]
    unscheduled: int
    reasons: tuple[str, ...]
    error: str | None
    removed: tuple[RemovedReport, ...] = ()
    manifests: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    placement: Placement | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of one deployment."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "desiredReplicas": self.desired_replicas,
            "replicas": [
                {"index": r.index, "cluster": r.cluster, "engines": dict(r.engines)}
                for r in self.replicas
            ],
            "unscheduled": self.unscheduled,
            "reasons": list(self.reasons),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """Reports per deployment (input order), errors about other objects, and how each
    cluster's capacity was counted (`Node` or `Device`, by cluster name)."""

    deployments: tuple[DeploymentReport, ...]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    accounting: Mapping[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(d.error for d in self.deployments)


def describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = meta.get("name", "<unnamed>")
    namespace = meta.get("namespace")
    return f"{obj.get('kind', '<no kind>')} {namespace + '/' if namespace else ''}{name}"


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of an object the scheduler reads; None for any other object."""
    kind = obj.get("kind")
    if kind not in SCHEDULING_KINDS:
        return None
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return (str(kind), "", f"<unnamed {id(obj)}>")
    return (str(kind), str(meta.get("namespace", "")), str(meta.get("name", "")))


def _report(placement: Placement, source: Mapping[str, Any] | None) -> DeploymentReport:
    return DeploymentReport(
        namespace=placement.namespace,
        name=placement.name,
        desired_replicas=placement.desired,
        replicas=tuple(
            ReplicaReport(
                r.index,
                r.cluster,
                {e.engine: e.pool for e in r.engines},
                r.retained,
                r.why,
                r.name,
            )
            for r in placement.replicas
        ),
        unscheduled=placement.unscheduled,
        reasons=placement.reasons,
        error=placement.error,
        removed=tuple(
            RemovedReport(r.replica.name, r.replica.index, r.replica.cluster, r.why)
            for r in placement.removed
        ),
        manifests=tuple(model_replica(source, r) for r in placement.replicas)
        if source is not None and placement.error is None
        else (),
        placement=placement,
    )


Validate = Callable[[Mapping[str, Any]], tuple[dict[str, Any], list[Any]]]
"""`modelplane.api.validation.validate`, or a stand-in answering exactly as it does."""


def _validate(
    obj: Mapping[str, Any], check: Validate = validate
) -> tuple[dict[str, Any], list[Any]]:
    """`check` of everything but `status`, which controllers write and the API server
    has already checked: a status this scheduler does not fully read must never take a
    cluster out of the fleet. The status given is kept as it is."""
    if "status" not in obj:
        return check(obj)
    defaulted, errors = check({k: v for k, v in obj.items() if k != "status"})
    defaulted["status"] = obj["status"]
    return defaulted, errors


def being_deleted(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` carries a deletionTimestamp (gone once its finalizers are released)."""
    meta = obj.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def _age(position: int, obj: Mapping[str, Any]) -> tuple[bool, str, int]:
    """Oldest first; objects without a creationTimestamp last, in input order."""
    meta = obj.get("metadata")
    created = meta.get("creationTimestamp") if isinstance(meta, Mapping) else None
    return (not created, str(created or ""), position)


def plan(
    objects: Sequence[Mapping[str, Any]],
    *,
    offline: bool = True,
    sources: Sequence[str] = (),
    validator: Validate = validate,
) -> Plan:
    """Validate `objects` and place every ModelDeployment among them, oldest first.

    `offline` says the objects may lack status (manifests rather than a live
    listing): then an InferenceCluster without status counts as Ready. `sources`,
    when given, names where each object came from ("FILE (document N)")
    so problems with objects other than deployments point at the document. An
    object given twice (same kind, namespace and name) is replaced by the later one,
    as `kubectl apply` would, keeping its place in the order; that is a warning.
    `validator` replaces `validate` (the running scheduler passes one that remembers
    each object version's result); its defaulted object may be changed by `plan`.
    """
    valid: dict[str, list[Mapping[str, Any]]] = {kind: [] for kind in SCHEDULING_KINDS}
    order: list[tuple[int, Mapping[str, Any], str | None]] = []
    problems: list[str] = []
    warnings: list[str] = []
    first_seen: dict[tuple[str, str, str], int] = {}

    def where(position: int) -> str:
        return sources[position] if position < len(sources) else f"object {position}"

    latest: dict[tuple[str, str, str], int] = {}
    for position, obj in enumerate(objects):
        identity = _identity(obj)
        if identity is None:
            continue
        if identity in first_seen:
            warnings.append(
                f"{where(position)}: {describe(obj)} was already given in "
                f"{where(first_seen[identity])}; the later one is used"
            )
        else:
            first_seen[identity] = position
        latest[identity] = position

    # Each object in the place it was first given, in the version given last.
    for identity in sorted(first_seen, key=first_seen.__getitem__):
        position = latest[identity]
        obj = objects[position]
        kind = identity[0]
        defaulted, errors = _validate(obj, validator)
        message = "; ".join(str(e) for e in errors) if errors else None
        if kind == "ModelDeployment":
            if not being_deleted(obj):
                order.append((position, defaulted if message is None else obj, message))
        elif message is not None:
            problems.append(f"{where(position)}: {message}")
        if message is None:
            valid[str(kind)].append(defaulted)

    fleet = Fleet(
        clusters=tuple(
            snapshot.cluster(o, offline=offline)
            for o in valid["InferenceCluster"]
            if not being_deleted(o)  # being deleted: its replicas drain and are placed elsewhere
        ),
        classes={c.name: c for c in map(snapshot.hardware_class, valid["InferenceClass"])},
        # Oldest first: in device accounting the ledger packs existing replicas in this
        # order, the nearest it knows to the order their pods bound in.
        replicas=tuple(
            snapshot.replica(o)
            for _, o in sorted(enumerate(valid["ModelReplica"]), key=lambda item: _age(*item))
        ),
        caches={(c.namespace, c.name): c for c in map(snapshot.cache, valid["ModelCache"])},
    )
    session = Session(fleet)
    ordered = sorted(order, key=lambda item: _age(item[0], item[1]))
    targets = {id(obj): snapshot.deployment(obj) for _, obj, error in ordered if error is None}
    session.settle(list(targets.values()))
    reports = []
    for _, obj, error in ordered:
        if error is None:
            reports.append(_report(session.place(targets[id(obj)]), obj))
            continue
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        assert isinstance(meta, Mapping)
        spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        desired = spec.get("replicas", 1)
        held = session.hold(
            str(meta.get("namespace", "default")),
            str(meta.get("name", "")),
            desired if isinstance(desired, int) and desired >= 0 else 0,
            error,
        )
        reports.append(_report(held, None))
    accounting = {c.name: c.accounting for c in fleet.clusters}
    return Plan(tuple(reports), tuple(problems), tuple(warnings), accounting)
