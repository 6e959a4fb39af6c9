"""One reconcile pass: observe every InferenceCluster, decide its status and finalizer, write.

The shared `ReconcileLoop` runs a pass whenever InferenceClusters,
InferenceClasses, ModelReplicas or the Secrets of the service's namespace
change, and at least every `RESYNC_S` seconds, which is how a cluster that
stopped answering turns not Ready within a bounded time (`RESYNC_S` plus the
inspection deadline). Only the leader writes; every copy observes. Status goes through the status
subresource and only when it changed. The finalizer (`drain`) holds a deleted
cluster until the ModelReplicas on it have drained, and is released after the
status that says so.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping

from modelplane import controllermetrics
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector
from modelplane.wellknown import API

from cluster_provisioner import drain, observe
from cluster_provisioner.status import Inspection, decide

SERVICE = "cluster-provisioner"
RESYNC_S = 3.0
log = logging.getLogger("cluster_provisioner")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def watched_paths(namespace: str) -> list[str]:
    return [
        f"{API}/inferenceclusters",
        f"{API}/inferenceclasses",
        f"{API}/modelreplicas",
        f"/api/v1/namespaces/{namespace}/secrets",
    ]


class Provisioner:
    def __init__(self, kube: Kube, namespace: str, elector: LeaderElector) -> None:
        self.kube = kube
        self.namespace = namespace
        self.elector = elector

    async def reconcile_all(self) -> None:
        clusters = (await self.kube.get(f"{API}/inferenceclusters") or {}).get("items", [])
        classes = {
            c["metadata"]["name"]: c
            for c in (await self.kube.get(f"{API}/inferenceclasses") or {}).get("items", [])
        }
        replicas = (await self.kube.get(f"{API}/modelreplicas") or {}).get("items", [])
        on_cluster = drain.replicas_by_cluster(replicas)
        depth = controllermetrics.queued(SERVICE, "InferenceCluster", len(clusters))
        results = await asyncio.gather(
            *(self.reconcile(c, classes, on_cluster.get(c["metadata"]["name"], 0))
              for c in clusters),
            return_exceptions=True,
        )  # fmt: skip
        depth.set(0)
        for cluster, result in zip(clusters, results, strict=True):
            if isinstance(result, BaseException):
                log.error(
                    "reconcile failed",
                    extra={"fields": {"object": f"InferenceCluster/{cluster['metadata']['name']}",
                                      "error": repr(result)}},
                )  # fmt: skip

    async def reconcile(self, cluster: Json, classes: Mapping[str, Json], replicas: int) -> None:
        with controllermetrics.reconciling(SERVICE, "InferenceCluster"):
            credentials = await observe.read_credentials(self.kube, cluster, self.namespace)
            inspection: Inspection | None = None
            if credentials is not None and credentials.kubeconfig:
                inspection = await observe.inspect(credentials.kubeconfig)
            deleting = drain.deletion_started(cluster) is not None
            draining = drain.draining_message(cluster, replicas) if deleting else ""
            status = decide(cluster, classes, credentials, inspection, _now(), draining)
            if not self.elector.is_leader:
                return
            if status != (cluster.get("status") or {}):
                await self._write_status(cluster, status)
            reachable = inspection is not None and not inspection.error
            now = datetime.datetime.now(datetime.UTC)
            action = drain.finalizer_action(cluster, replicas, reachable, now)
            if action is not drain.Action.KEEP:
                await self._set_finalizer(cluster, action, replicas, reachable)

    async def _set_finalizer(
        self, cluster: Json, action: drain.Action, replicas: int, reachable: bool
    ) -> None:
        name = cluster["metadata"]["name"]
        held = [drain.FINALIZER] if action is drain.Action.ADD else []
        await self.kube.own_finalizers(f"{API}/inferenceclusters/{name}", cluster, held)
        if action is drain.Action.RELEASE:
            log.info(
                "finalizer released",
                extra={"fields": {"object": f"InferenceCluster/{name}", "cluster": name,
                                  "replicas_left": replicas, "reachable": reachable}},
            )  # fmt: skip

    async def _write_status(self, cluster: Json, status: Json) -> None:
        name = cluster["metadata"]["name"]
        await self.kube.merge_patch(
            f"{API}/inferenceclusters/{name}/status",
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
