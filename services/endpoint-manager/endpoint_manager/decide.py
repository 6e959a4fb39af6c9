"""Everything endpoint-manager does for one ModelReplica, decided from what it observed. Pure.

`decide(replica, observed, now)` returns a `Decision`; the controller only carries
it out. Time comes in as `now`; there is no I/O, clock or randomness here.

A live replica gets the finalizer `FINALIZER`. Its objects (`workload.render`)
are applied on its cluster when no apply of its current generation succeeded, a
failed apply is `RETRY_S` old, the cluster lost or changed one of them (seen
through the watch: an object missing `SETTLE_S` after the apply, or one whose
`metadata.generation` moved past what the apply returned), or `REAPPLY_S`
passed (a safety net). Once its generation applied, objects it owns there and
no longer renders are pruned.

Its health (`GET <gateway>/<ns>/<replica>/health`) is probed once every
workload is ready (or while the cluster's watch cache has not synced yet, e.g.
just after a restart, so a serving replica keeps its endpoint meanwhile):
again after `PROBE_RETRY_S` while it fails, and every `PROBE_EVERY_S` (spread
by the replica's uid, so probes do not bunch) while it answers. A decision
that applies or probes leaves the rest (prune, status, endpoint) alone: the
controller carries those out and decides again with their outcome.

A replica with `spec.modelCacheRef` also carries `CacheReady` (`cachegate`): while its
ModelCache is not Ready on the replica's cluster nothing is applied and `Synced` is False
with the cache's progress there.

`Synced` says whether its objects are applied; `Ready` whether every workload
has all its pods ready (a PrefillDecode replica's phase engines: one pod each;
its router: all) and the health probe answered 200. Its ModelEndpoint
exists only while it is Ready.

A replica being deleted is drained in order: its ModelEndpoint is withdrawn
first; its objects on the cluster are deleted (the route first) once the
endpoint is gone and `DRAIN_S` passed since it was withdrawn (since the
deletion began when this process did not see the withdrawal); the finalizer is
released when nothing of it is left there. It is released at once, without a
teardown, when its InferenceCluster no longer exists or is being deleted and cannot be
reached, and when nothing of it was ever applied there (a cluster never provisioned:
nothing to tear down). What was applied is recorded on the replica itself
(`replica.APPLIED_ON`, see `Decision.mark_applied`), so a restart still knows a teardown
is owed. While a cluster that did receive its objects cannot be reached, the replica is
held, and its Ready condition (`TeardownBlocked`) names the cluster, why it is not Ready,
and how to let the replica go.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from modelplane import conditions
from modelplane.wellknown import Json

from endpoint_manager import cachegate, workload
from endpoint_manager.replica import (
    APPLIED,
    APPLIED_ON,
    APPLY_FAILED,
    CLUSTER_NOT_FOUND,
    DELETING,
    DRAIN_S,
    FINALIZER,
    SERVING,
    TEARDOWN_BLOCKED,
    UNREACHABLE,
    UNSUPPORTED,
    WORKLOAD_NOT_READY,
    applied_on,
    cluster_lost,
    cluster_not_ready,
    endpoint_for,
    gateway_url,
    key,
    parse_time,
    route_path,
    same_endpoint,
    stamp,
    workload_problem,
)
from endpoint_manager.schedulername import scheduler_name

RETRY_S = 2.0
SETTLE_S = 5.0
REAPPLY_S = 600.0
PROBE_RETRY_S = 1.0
PROBE_EVERY_S = 10.0
SOON_WINDOW_S = 120.0
STATUS_FIELDS = ("conditions", "observedGeneration", "address")

Ref = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name) of an object on the replica's cluster."""


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of the last apply of a replica's objects.

    generation: the replica's generation it applied; at: when; error: why it failed
    (None: every object applied); objects: (kind, name, metadata.generation) of each object
    as the cluster returned it; reached: False only when it failed before anything could
    reach the cluster (no kubeconfig for it, or no such InferenceCluster)."""

    generation: int
    at: datetime.datetime
    error: str | None = None
    objects: tuple[tuple[str, str, int], ...] = ()
    reached: bool = True


@dataclass(frozen=True, slots=True)
class Health:
    """The outcome of the last health probe: ok when it answered 200."""

    ok: bool
    at: datetime.datetime


@dataclass(frozen=True, slots=True)
class Observed:
    """What the controller knows of one replica.

    cluster: its InferenceCluster (None when there is none);
    deployment: its ModelDeployment (None when gone);
    endpoint: its ModelEndpoint as it exists now (None when absent);
    remote: every object on its cluster labelled as the replica's, from the watch cache
    (None while the cache of that cluster is not synced);
    applied, health: the last apply and probe (None: none yet, e.g. after a restart);
    withdrawn_at: when this process withdrew the endpoint of the replica being deleted;
    router_image: what a PrefillDecode replica's router runs (endpoint-manager's setting).
    cache: the ModelCache its `spec.modelCacheRef` names (None: none, or not found).
    """

    cluster: Json | None
    deployment: Json | None = None
    endpoint: Json | None = None
    remote: tuple[Json, ...] | None = None
    applied: Applied | None = None
    health: Health | None = None
    withdrawn_at: datetime.datetime | None = None
    router_image: str = workload.DEFAULT_ROUTER_IMAGE
    cache: Json | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do, in this order.

    add_finalizer: put `FINALIZER` on the replica;
    mark_applied: annotate the replica `APPLIED_ON: <its cluster>` (objects of it may be
    there: an apply reached the cluster, or the watch shows some);
    apply: objects to server-side apply on its cluster, in order;
    probe: the health URL to GET now;
    prune: objects of the replica there that it no longer renders;
    publish: the ModelEndpoint to server-side apply; withdraw: delete the replica's endpoint;
    status: the replica's new status (None: leave it as it is);
    teardown: objects of the deleted replica to delete on its cluster, route first;
    release: drop `FINALIZER`;
    soon: the replica should change within seconds without any event here, so look again.
    """

    add_finalizer: bool = False
    mark_applied: bool = False
    apply: tuple[Json, ...] = ()
    probe: str | None = None
    prune: tuple[Ref, ...] = ()
    publish: Json | None = None
    withdraw: bool = False
    status: Json | None = None
    teardown: tuple[Ref, ...] = ()
    release: bool = False
    soon: bool = False


def decide(replica: Mapping[str, Any], seen: Observed, now: datetime.datetime) -> Decision:
    """Everything to do for `replica` now (see the module docstring)."""
    if replica["metadata"].get("deletionTimestamp"):
        return _drain(replica, seen, now)
    return _live(replica, seen, now)


class _Conditions:
    def __init__(self, replica: Mapping[str, Any], now: datetime.datetime) -> None:
        self.replica = replica
        self.generation = int(replica["metadata"].get("generation") or 0)
        self.now = stamp(now)
        self.name = f"ModelReplica {key(replica)}"
        self.extra: list[dict[str, object]] = []  # conditions every status carries

    def make(self, type_: str, ok: bool, reason: str, message: str) -> dict[str, object]:
        state: conditions.Status = "True" if ok else "False"
        return conditions.condition(type_, state, reason, message, self.generation, self.now)

    def status(self, wanted: list[dict[str, object]], address: str | None = None) -> Json | None:
        """The new status, or None when it says what the replica's status already says."""
        old = self.replica.get("status") or {}
        new: Json = {
            "conditions": conditions.merge(old.get("conditions") or [], [*wanted, *self.extra]),
            "observedGeneration": self.generation,
            "address": address,
        }
        return None if all(old.get(k) == new[k] for k in STATUS_FIELDS) else new


def _live(replica: Mapping[str, Any], seen: Observed, now: datetime.datetime) -> Decision:
    meta = replica["metadata"]
    cluster_name = replica["spec"]["clusterName"]
    made = _Conditions(replica, now)
    name = made.name
    todo = Decision(
        add_finalizer=FINALIZER not in (meta.get("finalizers") or []),
        mark_applied=_unrecorded(replica, seen),
    )
    rendered: workload.Rendered | None = None
    gate = cachegate.check(replica, seen.cache)
    if gate is not None:
        made.extra = [made.make(cachegate.CACHE_READY, gate.ready, gate.reason, gate.message)]
    if seen.cluster is None:
        why = f"{name}: spec.clusterName {cluster_name!r} names no InferenceCluster"
        synced = made.make(conditions.SYNCED, False, CLUSTER_NOT_FOUND, why)
    elif gate is not None and not gate.ready:
        synced = made.make(conditions.SYNCED, False, gate.reason, gate.message)
    else:
        try:
            rendered = workload.render(
                replica, seen.router_image, scheduler_name(seen.cluster, seen.remote)
            )
        except workload.UnsupportedError as error:
            synced = made.make(conditions.SYNCED, False, UNSUPPORTED, f"{name}: {error}")
        else:
            applied = seen.applied
            if applied is None or _apply_due(made.generation, seen, rendered, now):
                return replace(todo, apply=rendered.objects)  # status follows the outcome
            if applied.error is not None:
                why = f"{name}: {applied.error}"
                synced = made.make(conditions.SYNCED, False, APPLY_FAILED, why)
            else:
                why = f"{name}: applied on {cluster_name}"
                synced = made.make(conditions.SYNCED, True, APPLIED, why)
                todo = replace(todo, prune=_extras(seen.remote, rendered))

    url = gateway_url(seen.cluster)
    address = f"{url}{route_path(replica).rstrip('/')}" if url else None
    problem = _not_ready(name, cluster_name, synced, seen.remote, rendered)
    if problem is None and address is not None:
        health = seen.health
        if _probe_due(meta.get("uid") or "", health, now):
            return replace(todo, probe=f"{address}/health", prune=())
        if health is None or not health.ok:
            reason, problem = UNREACHABLE, f"{name}: GET {address}/health did not answer 200"
    elif problem is None:
        where = f"{cluster_name}'s gateway (no address yet)"
        reason, problem = UNREACHABLE, f"{name}: GET {where} did not answer 200"
    else:
        reason = WORKLOAD_NOT_READY
    if problem is not None:
        ready = made.make(conditions.READY, False, reason, problem)
        status = made.status([synced, ready])
        created = meta.get("creationTimestamp")
        fresh = bool(created) and (now - parse_time(created)).total_seconds() < SOON_WINDOW_S
        return replace(todo, withdraw=seen.endpoint is not None, status=status, soon=fresh)
    ready = made.make(conditions.READY, True, SERVING, f"{name}: serving at {address}")
    wanted = endpoint_for(replica, seen.deployment, str(url))
    publish = None if seen.endpoint and same_endpoint(seen.endpoint, wanted) else wanted
    return replace(todo, publish=publish, status=made.status([synced, ready], address))


def _not_ready(
    name: str,
    cluster: str,
    synced: Mapping[str, object],
    remote: tuple[Json, ...] | None,
    rendered: workload.Rendered | None,
) -> str | None:
    """Why the replica's workloads cannot serve yet (None: every one is ready)."""
    if synced["status"] != "True" or rendered is None:
        return str(synced["message"])
    if remote is None:
        return None  # not seen yet (e.g. just restarted): the health probe decides alone
    live = {(o.get("kind"), o["metadata"]["name"]): o for o in remote}
    problems = []
    for obj in rendered.objects:
        if (obj["apiVersion"], obj["kind"]) not in workload.WORKLOAD_KINDS:
            continue
        ident = (obj["kind"], obj["metadata"]["name"])
        found = live.get(ident)
        if found is None:
            problems.append(f"{name}: no {obj['kind']} {obj['metadata']['name']} on {cluster} yet")
        elif (problem := workload_problem(found, ident in rendered.one_ready)) is not None:
            problems.append(problem)
    return "; ".join(problems) or None


def _reached(seen: Observed) -> bool:
    """Whether objects of the replica may be on its cluster, as this process knows it: its
    last apply reached the cluster, or the watch shows some."""
    return bool(seen.remote) or (seen.applied is not None and seen.applied.reached)


def _unrecorded(replica: Mapping[str, Any], seen: Observed) -> bool:
    """Whether objects of the replica may be on its cluster (`_reached`) and its `APPLIED_ON`
    annotation does not say so yet."""
    annotations = replica["metadata"].get("annotations") or {}
    return _reached(seen) and annotations.get(APPLIED_ON) != replica["spec"]["clusterName"]


def _apply_due(
    generation: int, seen: Observed, rendered: workload.Rendered, now: datetime.datetime
) -> bool:
    applied = seen.applied
    if applied is None or applied.generation != generation:
        return True
    age = (now - applied.at).total_seconds()
    if applied.error is not None:
        return age >= RETRY_S
    if age >= REAPPLY_S:
        return True
    if seen.remote is None or age < SETTLE_S:
        return False
    live = {
        (o.get("kind"), o["metadata"]["name"]): int(o["metadata"].get("generation") or 0)
        for o in seen.remote
    }
    returned = {(kind, name): gen for kind, name, gen in applied.objects}
    for obj in rendered.objects:
        if obj["kind"] == "Namespace":
            continue  # shared, not labelled as the replica's: not in the cache
        ident = (obj["kind"], obj["metadata"]["name"])
        if ident not in live or live[ident] > returned.get(ident, live[ident]):
            return True
    return False


def _extras(remote: tuple[Json, ...] | None, rendered: workload.Rendered) -> tuple[Ref, ...]:
    """The replica's objects on its cluster that it no longer renders, route first."""
    wanted = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects}
    return _refs(o for o in remote or () if (o.get("kind"), o["metadata"]["name"]) not in wanted)


def _refs(objects: Any) -> tuple[Ref, ...]:
    """Refs of `objects` not already being deleted, in `workload.OWNED_KINDS` order."""
    order = {kind: i for i, (_, kind) in enumerate(workload.OWNED_KINDS)}
    found = [
        (o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in objects
        if not o["metadata"].get("deletionTimestamp")
    ]
    return tuple(sorted(found, key=lambda ref: (order.get(ref[1], len(order)), ref[3])))


def probe_interval(uid: str) -> float:
    """Seconds between probes of a serving replica: `PROBE_EVERY_S` give or take a quarter,
    fixed per replica (from its uid) so the probes of many replicas spread out."""
    spread = int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return PROBE_EVERY_S * (0.75 + 0.5 * spread)


def _probe_due(uid: str, health: Health | None, now: datetime.datetime) -> bool:
    if health is None:
        return True
    wait = probe_interval(uid) if health.ok else PROBE_RETRY_S
    return (now - health.at).total_seconds() >= wait


def _drain(replica: Mapping[str, Any], seen: Observed, now: datetime.datetime) -> Decision:
    meta = replica["metadata"]
    made = _Conditions(replica, now)
    name = made.name
    withdraw = seen.endpoint is not None

    def deleting(message: str) -> Json | None:
        return made.status([made.make(conditions.READY, False, DELETING, message)])

    if seen.cluster is None or cluster_lost(seen.cluster):
        why = "is gone" if seen.cluster is None else "is being deleted and cannot be reached"
        message = f"{name}: its cluster {why}; released without tearing anything down"
        return Decision(withdraw=withdraw, status=deleting(message), release=True)
    cluster = replica["spec"]["clusterName"]
    if not withdraw and not seen.remote and not (applied_on(replica) or _reached(seen)):
        message = f"{name}: nothing of it was applied on {cluster}; released at once"
        return Decision(status=deleting(message), release=True)
    if withdraw:
        message = f"{name}: withdrawing its ModelEndpoint before the workload goes"
        return Decision(withdraw=True, status=deleting(message), soon=True)  # at once
    began = parse_time(meta["deletionTimestamp"])
    soon = (now - began).total_seconds() < SOON_WINDOW_S
    since = max(began, seen.withdrawn_at or began)
    if (now - since).total_seconds() < DRAIN_S:
        message = f"{name}: endpoint withdrawn; draining for {DRAIN_S:g}s"
        return Decision(status=deleting(message), soon=soon)
    message = f"{name}: tearing down on {cluster}"
    if seen.remote is None:
        problem = cluster_not_ready(seen.cluster)
        if problem is None:
            return Decision(status=deleting(message), soon=soon)
        message = (
            f"{name}: its objects on {cluster} cannot be torn down: {problem}; held until "
            f"{cluster} answers (deleting InferenceCluster {cluster} releases it without "
            "a teardown)"
        )
        blocked = made.make(conditions.READY, False, TEARDOWN_BLOCKED, message)
        return Decision(status=made.status([blocked]), soon=soon)
    if not seen.remote:
        return Decision(status=deleting(message), release=True)
    return Decision(status=deleting(message), teardown=_refs(seen.remote), soon=soon)
