"""One reconcile pass: observe every InferenceCluster, decide its status, write it.

The shared `ReconcileLoop` runs a pass whenever InferenceClusters,
InferenceClasses or the Secrets of the service's namespace change, and at least
every `RESYNC_S` seconds, which is how a cluster that stopped answering turns
not Ready within a bounded time (`RESYNC_S` plus the inspection deadline). Only
the leader writes; every copy observes. Status goes through the status
subresource and only when it changed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping

from modelplane import controllermetrics
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector

from cluster_provisioner import observe
from cluster_provisioner.status import Inspection, decide

SERVICE = "cluster-provisioner"
RESYNC_S = 3.0
API = "/apis/modelplane.ai/v1alpha1"
log = logging.getLogger("cluster_provisioner")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def watched_paths(namespace: str) -> list[str]:
    return [
        f"{API}/inferenceclusters",
        f"{API}/inferenceclasses",
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
        depth = controllermetrics.queued(SERVICE, "InferenceCluster", len(clusters))
        results = await asyncio.gather(
            *(self.reconcile(c, classes) for c in clusters), return_exceptions=True
        )
        depth.set(0)
        for cluster, result in zip(clusters, results, strict=True):
            if isinstance(result, BaseException):
                log.error(
                    "reconcile failed",
                    extra={"fields": {"object": f"InferenceCluster/{cluster['metadata']['name']}",
                                      "error": repr(result)}},
                )  # fmt: skip

    async def reconcile(self, cluster: Json, classes: Mapping[str, Json]) -> None:
        name = cluster["metadata"]["name"]
        with controllermetrics.reconciling(SERVICE, "InferenceCluster"):
            credentials = await observe.read_credentials(self.kube, cluster, self.namespace)
            inspection: Inspection | None = None
            if credentials is not None and credentials.kubeconfig:
                inspection = await observe.inspect(credentials.kubeconfig)
            status = decide(cluster, classes, credentials, inspection, _now())
            if status == (cluster.get("status") or {}) or not self.elector.is_leader:
                return
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
