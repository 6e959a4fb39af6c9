"""One fleet-scheduler pass: read the fleet from the cache, decide with `reconcile.decide`, apply.

Placement is decided for every deployment at once on one shared ledger, so the
loop has one key (`loop.ALL`): any change of the five watched kinds that can
alter the decision (`changes.Relevance`: not this service's own status writes)
queues one pass, however many changes arrive while it waits. Every copy reads those kinds
from its `Cache` (list + watch, no API request per pass) and refreshes its
`LiveSnapshot` (the gRPC API answers from it); only the leader writes: ModelReplicas by
server-side apply (field manager `modelplane-fleet-scheduler`), deletions of
dropped replicas, and ModelDeployment status through the status subresource.
The leader validates each object version once (`validated.ValidationCache`), so
a pass over unchanged objects costs only the placement.
"""

from __future__ import annotations

import datetime
import logging

from modelplane import controllermetrics
from modelplane.cache import Cache
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector
from modelplane.wellknown import API
from modelplane.writes import Write, perform

from fleet_scheduler.reconcile import decide
from fleet_scheduler.snapshot import LiveSnapshot
from fleet_scheduler.validated import ValidationCache

SERVICE = "fleet-scheduler"
RESYNC_S = 60.0  # a safety net: every input is watched
KINDS = {
    "InferenceClass": "inferenceclasses",
    "InferenceCluster": "inferenceclusters",
    "ModelCache": "modelcaches",
    "ModelReplica": "modelreplicas",
    "ModelDeployment": "modeldeployments",
}
log = logging.getLogger("fleet_scheduler")


def watched_paths() -> list[str]:
    return [f"{API}/{plural}" for plural in KINDS.values()]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path(namespace: str, plural: str, name: str) -> str:
    return f"{API}/namespaces/{namespace}/{plural}/{name}"


class Scheduler:
    def __init__(
        self, kube: Kube, elector: LeaderElector, live: LiveSnapshot, cache: Cache
    ) -> None:
        self.kube = kube
        self.elector = elector
        self.live = live
        self.cache = cache
        self.validated = ValidationCache()

    def observe(self) -> list[Json]:
        """The watched objects, kind by kind, each kind by namespace and name (read-only)."""
        return [obj for path in watched_paths() for obj in self.cache.items(path)]

    async def reconcile_all(self) -> None:
        """One pass; `WritesFailedError` (after every other write) makes the loop retry."""
        objects = self.observe()
        self.live.update(objects)
        if not self.elector.is_leader:
            return
        with controllermetrics.reconciling(SERVICE, "ModelDeployment"):
            self.validated.retain(objects)
            decision = decide(objects, _now(), self.validated)
            for problem in decision.problems:
                log.warning("object left out", extra={"fields": {"why": problem}})
            writes = [self._apply_replica(r) for r in decision.apply]
            writes += [self._delete_replica(ns, name) for ns, name in decision.delete]
            writes += [self._write_status(ns, name, st) for ns, name, st in decision.status]
            await perform(SERVICE, "ModelDeployment", writes, log)

    def _apply_replica(self, replica: Json) -> tuple[str, Write]:
        meta = replica["metadata"]
        what = f"ModelReplica {meta['namespace']}/{meta['name']}"

        async def write() -> None:
            await self.kube.apply(_path(meta["namespace"], "modelreplicas", meta["name"]), replica)
            log.info(
                "replica applied",
                extra={"fields": {"object": what, "cluster": replica["spec"]["clusterName"]}},
            )

        return what, write

    def _delete_replica(self, namespace: str, name: str) -> tuple[str, Write]:
        what = f"ModelReplica {namespace}/{name}"

        async def write() -> None:
            await self.kube.delete(_path(namespace, "modelreplicas", name))
            log.info("replica deleted", extra={"fields": {"object": what}})

        return what, write

    def _write_status(self, namespace: str, name: str, status: Json) -> tuple[str, Write]:
        path = _path(namespace, "modeldeployments", name) + "/status"

        async def write() -> None:
            await self.kube.merge_patch(path, {"status": status})

        return f"ModelDeployment {namespace}/{name} status", write
