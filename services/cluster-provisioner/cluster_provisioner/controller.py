"""Reconciling one InferenceCluster: its status and finalizer, from the caches.

A key of the shared `ReconcileLoop` is an InferenceCluster's name. The loop's
cache holds InferenceClusters, InferenceClasses, ModelReplicas and the Secrets
of the service's namespace (list + watch); `keys` maps a change to the clusters
it concerns: a cluster to itself, a class to the clusters with a pool of it, a
replica to its cluster, a Secret to the clusters whose kubeconfig it holds.
What each inference cluster carries comes from its own watches
(`cluster_provisioner.remote.ClusterViews`), which queue the cluster whenever
something there changes or it is lost or reached again: no request is made to
reconcile. `reconcile(name)` reads everything from those caches (observe),
asks the pure `status.decide` and `drain.finalizer_action` (decide), and writes
what changed (apply). A cluster whose watches have not listed yet is left as it
is until they have. The loop's resync (`RESYNC_S`) is only a safety net.
Only the leader watches the clusters and writes (a new leader's loop queues
every cluster; a copy that is not the leader stops watching them). Status goes
through the status subresource, only when it changed, carrying the cached
resourceVersion (a stale one is refused, and the watch brings the newer object
back round). The finalizer (`drain`) holds a deleted cluster until the
ModelReplicas on it have drained, and is released after the status that says
so; a deleted cluster is queued again when its drain's time limit falls due,
and a cluster whose scheduler extension is healthy when its extender's Lease
would lapse (`cluster_provisioner.extension`).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping

from modelplane import controllermetrics
from modelplane.cache import Cache
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector
from modelplane.wellknown import API

from cluster_provisioner import drain, extension, observe
from cluster_provisioner.remote import ClusterViews
from cluster_provisioner.status import Inspection, decide

SERVICE = "cluster-provisioner"
RESYNC_S = 60.0
WORKERS = 16
CLUSTERS = f"{API}/inferenceclusters"
CLASSES = f"{API}/inferenceclasses"
REPLICAS = f"{API}/modelreplicas"
log = logging.getLogger("cluster_provisioner")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def watched_paths(namespace: str) -> list[str]:
    return [CLUSTERS, CLASSES, REPLICAS, observe.secrets_path(namespace)]


class Provisioner:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        elector: LeaderElector,
        cache: Cache,
        views: ClusterViews | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.elector = elector
        self.cache = cache
        self.views = views or ClusterViews()

    def keys(self, path: str, obj: Json) -> Iterable[str]:
        """The clusters a change of `obj` (in the watched collection `path`) concerns."""
        if path == CLUSTERS:
            return (obj["metadata"]["name"],)
        if path == REPLICAS:
            cluster = (obj.get("spec") or {}).get("clusterName")
            return (cluster,) if cluster else ()
        clusters = self.cache.items(CLUSTERS)
        name = obj["metadata"]["name"]
        if path == CLASSES:
            return [
                c["metadata"]["name"]
                for c in clusters
                if any(p.get("className") == name for p in c["spec"].get("nodePools") or [])
            ]
        return [c["metadata"]["name"] for c in clusters if observe.secret_name(c) == name]

    def replicas_on(self, cluster: str) -> int:
        return drain.replicas_by_cluster(self.cache.items(REPLICAS)).get(cluster, 0)

    async def reconcile_key(self, name: str) -> float | None:
        """Reconcile the cluster `name` (when it is gone or this copy is not the leader,
        only stop watching it); the seconds until it must be looked at again with nothing
        heard: its drain's time limit, while deleted, or its extender's Lease lapsing."""
        cluster = self.cache.get(CLUSTERS, name)
        if cluster is None or not self.elector.is_leader:
            await self.views.forget(name)
            return None
        classes = {c["metadata"]["name"]: c for c in self.cache.items(CLASSES)}
        return await self.reconcile(cluster, classes, self.replicas_on(name))

    async def reconcile(
        self, cluster: Json, classes: Mapping[str, Json], replicas: int
    ) -> float | None:
        name = cluster["metadata"]["name"]
        with controllermetrics.reconciling(SERVICE, "InferenceCluster"):
            secret = observe.secret_name(cluster)
            credentials = None
            if secret is not None:
                found = self.cache.get(observe.secrets_path(self.namespace), secret, self.namespace)
                credentials = observe.credentials(cluster, found, self.namespace)
            inspection: Inspection | None = None
            if credentials is not None and credentials.kubeconfig:
                inspection = await self.views.inspect(name, credentials.kubeconfig)
                if inspection is None:
                    return None  # its watches queue the cluster once they have listed
            else:
                await self.views.forget(name)
            deleting = drain.deletion_started(cluster) is not None
            draining = drain.draining_message(cluster, replicas) if deleting else ""
            status = decide(cluster, classes, credentials, inspection, _now(), draining)
            if status != (cluster.get("status") or {}):
                await self._write_status(cluster, status)
            reachable = inspection is not None and not inspection.error
            now = datetime.datetime.now(datetime.UTC)
            action = drain.finalizer_action(cluster, replicas, reachable, now)
            if action is not drain.Action.KEEP:
                await self._set_finalizer(cluster, action, replicas, reachable)
            due = [drain.hold_ends_in(cluster, now) if action is drain.Action.KEEP else None]
            if reachable and inspection is not None:
                due.append(extension.judge(inspection.extension_lease, now)[1])
            return min((d for d in due if d is not None), default=None)

    async def _set_finalizer(
        self, cluster: Json, action: drain.Action, replicas: int, reachable: bool
    ) -> None:
        name = cluster["metadata"]["name"]
        held = [drain.FINALIZER] if action is drain.Action.ADD else []
        await self.kube.own_finalizers(f"{CLUSTERS}/{name}", cluster, held)
        if action is drain.Action.RELEASE:
            log.info(
                "finalizer released",
                extra={"fields": {"object": f"InferenceCluster/{name}", "cluster": name,
                                  "replicas_left": replicas, "reachable": reachable}},
            )  # fmt: skip

    async def _write_status(self, cluster: Json, status: Json) -> None:
        name = cluster["metadata"]["name"]
        await self.kube.merge_patch(
            f"{CLUSTERS}/{name}/status",
            {"metadata": {"resourceVersion": cluster["metadata"]["resourceVersion"]},
             "status": status},
        )  # fmt: skip
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        log.info(
            "status written",
            extra={"fields": {"object": f"InferenceCluster/{name}",
                              "generation": cluster["metadata"].get("generation"),
                              "cluster": name, "ready": ready["status"],
                              "reason": ready["reason"]}},
        )  # fmt: skip
