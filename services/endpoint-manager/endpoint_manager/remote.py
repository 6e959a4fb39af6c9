"""What endpoint-manager owns on each inference cluster, followed through `Fleet.Watch`.

`RemoteCache` keeps, per tracked cluster, every object of the kinds a replica
may own there (`workload.OWNED_KINDS`) that carries endpoint-manager's
managed-by label, in all namespaces, indexed by the replica label. Per cluster
and kind, one task lists them (the list replaces what was kept; the kind counts
as synced) and then watches from there, applying each event. It never polls:
- a stream that ends after `RENEW_S` (the safety-net relist) starts over at once;
- a stream that breaks starts over after a backoff (`MIN_BACKOFF_S` doubling to
  `MAX_BACKOFF_S`), at once when `track` sees the cluster come back (its Ready
  condition or gateway address changed); while the relist fails, the kind is not
  synced, so the controller does not act on a stale view;
- a kind the cluster does not serve (a list answered NOT_FOUND, e.g. no
  LeaderWorkerSet CRD) counts as synced and empty, and is asked again after
  `MAX_BACKOFF_S`.
`on_change` runs after every change so the controller can look at once.
`owned` answers None unless every kind of that cluster is synced. `forget` drops
an object a delete found missing: it heals a deletion that happened between a
relist and its watch, which no event would ever report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from modelplane.fleetclient import FleetClient, FleetError
from modelplane.wellknown import MANAGED_BY, Json

from endpoint_manager import workload

RENEW_S = 300.0
MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
SELECTOR = f"{MANAGED_BY}={workload.MANAGER}"
log = logging.getLogger("endpoint_manager")

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name)"""


def _slim(obj: Json, api_version: str, kind: str) -> Json:
    """`obj` with its apiVersion and kind (the items of a list carry neither) and without
    its managedFields (large, and never read here)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "apiVersion": api_version, "kind": kind, "metadata": meta}


@dataclass
class _Cluster:
    """One cluster's kept objects, which kinds are synced, and the tasks following them."""

    token: str
    objects: dict[ObjectKey, Json] = field(default_factory=dict)
    by_replica: dict[tuple[str, str], set[ObjectKey]] = field(default_factory=dict)
    synced: set[str] = field(default_factory=set)
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def put(self, api_version: str, kind: str, obj: Json) -> None:
        meta = obj["metadata"]
        ident = (kind, meta.get("namespace", ""), meta["name"])
        self.drop(ident)
        self.objects[ident] = _slim(obj, api_version, kind)
        owner = (meta.get("labels") or {}).get(workload.REPLICA_LABEL)
        if owner:
            self.by_replica.setdefault((ident[1], owner), set()).add(ident)

    def drop(self, ident: ObjectKey) -> None:
        old = self.objects.pop(ident, None)
        owner = ((old or {}).get("metadata", {}).get("labels") or {}).get(workload.REPLICA_LABEL)
        if owner:
            keys = self.by_replica.get((ident[1], owner), set())
            keys.discard(ident)
            if not keys:
                self.by_replica.pop((ident[1], owner), None)

    def replace(self, api_version: str, kind: str, items: list[Json]) -> None:
        for ident in [i for i in self.objects if i[0] == kind]:
            self.drop(ident)
        for item in items:
            self.put(api_version, kind, item)


class RemoteCache:
    """Per-cluster watch caches of endpoint-manager's objects, fed by `Fleet.Watch`."""

    def __init__(self, fleet: FleetClient, on_change: Callable[[], None] = lambda: None) -> None:
        self.fleet = fleet
        self.on_change = on_change
        self.clusters: dict[str, _Cluster] = {}

    def track(self, clusters: Mapping[str, str]) -> None:
        """Follow exactly `clusters` (name -> a token of its reachability): start new ones,
        stop those not named, restart the broken streams of one whose token changed."""
        for name in [n for n in self.clusters if n not in clusters]:
            for task in self.clusters.pop(name).tasks:
                task.cancel()
        for name, token in clusters.items():
            state = self.clusters.get(name)
            if state is None:
                state = self.clusters[name] = _Cluster(token)
                state.tasks = [
                    asyncio.create_task(self._follow(name, state, api_version, kind))
                    for api_version, kind in workload.OWNED_KINDS
                ]
            elif state.token != token:
                state.token = token
                state.kick.set()  # wakes every task of the cluster waiting on this one
                state.kick = asyncio.Event()

    def owned(self, cluster: str, namespace: str, replica: str) -> tuple[Json, ...] | None:
        """Every object on `cluster` labelled as replica `namespace/replica`'s (the label value
        `workload.managed_labels` gives), or None while that cluster is not synced."""
        state = self.clusters.get(cluster)
        if state is None or len(state.synced) < len(workload.OWNED_KINDS):
            return None
        found = state.by_replica.get((namespace, replica), set())
        return tuple(state.objects[i] for i in sorted(found))

    def forget(self, cluster: str, kind: str, namespace: str, name: str) -> None:
        state = self.clusters.get(cluster)
        if state is not None:
            state.drop((kind, namespace, name))

    async def close(self) -> None:
        tasks = [t for s in self.clusters.values() for t in s.tasks]
        self.clusters.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, cluster: str, state: _Cluster, api_version: str, kind: str) -> None:
        backoff = MIN_BACKOFF_S
        while True:
            try:
                items = await self.fleet.list(cluster, api_version, kind, "", SELECTOR)
            except FleetError as error:
                wait = backoff
                if error.code == "NOT_FOUND" and "no InferenceCluster" not in error.message:
                    state.replace(api_version, kind, [])  # the cluster does not serve this kind
                    state.synced.add(kind)
                    wait = MAX_BACKOFF_S
                else:
                    state.synced.discard(kind)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                self._interrupted(cluster, kind, error, wait)
                await self._pause(state, wait)
                continue
            state.replace(api_version, kind, items)
            state.synced.add(kind)
            self.on_change()
            try:
                async for type_, obj in self.fleet.watch(
                    cluster, api_version, kind, "", SELECTOR, RENEW_S
                ):
                    if type_ == "DELETED":
                        meta = obj["metadata"]
                        state.drop((kind, meta.get("namespace", ""), meta["name"]))
                    else:
                        state.put(api_version, kind, obj)
                    self.on_change()
            except FleetError as error:  # kept as it is (still synced) until the relist
                self._interrupted(cluster, kind, error, backoff)
                await self._pause(state, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            else:
                backoff = MIN_BACKOFF_S  # renewed: list again at once

    def _interrupted(self, cluster: str, kind: str, error: FleetError, wait: float) -> None:
        log.warning(
            "remote watch interrupted",
            extra={"fields": {"cluster": cluster, "kind": kind, "error": str(error),
                              "retry_s": wait}},
        )  # fmt: skip
        self.on_change()

    @staticmethod
    async def _pause(state: _Cluster, wait: float) -> None:
        """Sleep `wait` seconds, or less when `track` kicks the cluster (it came back)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.kick.wait(), wait)
