"""One endpoint-manager pass: observe every ModelReplica, decide with `replica.decide`, apply.

Only the leader acts. Per replica, concurrently and each on its own (one
failing replica never holds up another):
- observe: its InferenceCluster, ModelDeployment and ModelEndpoint on the
  control cluster; its workloads on its cluster through the `Fleet` API; its
  health through the cluster's gateway (`GET <gateway>/<ns>/<replica>/health`);
- apply: the finalizer, the rendered objects (`workload.render`) through
  `Fleet` when the replica's generation changed, it is not Synced, or
  `REAPPLY_S` passed (drift); the ModelEndpoint (server-side apply, or delete
  to withdraw it); status through the status subresource; on deletion, the
  teardown of the objects on the cluster and the finalizer's release.
ModelEndpoints this service made whose replica is gone are deleted. While a
replica is starting or draining (`replica.expects_change`), the pass asks the
loop to run again after `SOON_S` instead of `RESYNC_S`, so a pod turning Ready
on its cluster is noticed within about half a second.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
from modelplane import controllermetrics
from modelplane.fleetclient import FleetClient, FleetError
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector

from endpoint_manager import workload
from endpoint_manager.replica import (
    FINALIZER,
    Observed,
    decide,
    expects_change,
    gateway_url,
    key,
    route_path,
)

SERVICE = "endpoint-manager"
RESYNC_S = 2.0
SOON_S = 0.5
REAPPLY_S = 60.0
HEALTH_TIMEOUT_S = 2.0
API = "/apis/modelplane.ai/v1alpha1"
WORKLOAD_KINDS = {("apps/v1", "Deployment"), ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")}
# What a replica may own on its cluster, in teardown order (the Namespace is shared: never).
OWNED_KINDS = (
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("v1", "Service"),
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
    ("apps/v1", "Deployment"),
    ("resource.k8s.io/v1", "ResourceClaimTemplate"),
)
log = logging.getLogger("endpoint_manager")


def watched_paths() -> list[str]:
    return [
        f"{API}/modelreplicas",
        f"{API}/modeldeployments",
        f"{API}/inferenceclusters",
        f"{API}/modelendpoints",
    ]


def _path(namespace: str, plural: str, name: str) -> str:
    return f"{API}/namespaces/{namespace}/{plural}/{name}"


def _by_key(listing: Json | None) -> dict[str, Json]:
    return {key(item): item for item in (listing or {}).get("items", [])}


class EndpointManager:
    def __init__(
        self, kube: Kube, fleet: FleetClient, elector: LeaderElector, http: httpx.AsyncClient
    ) -> None:
        self.kube = kube
        self.fleet = fleet
        self.elector = elector
        self.http = http
        self.applied: dict[str, tuple[int, float]] = {}  # replica uid -> (generation, when)
        self.withdrawn: dict[str, datetime.datetime] = {}  # replica uid -> endpoint withdrawn

    async def reconcile_all(self) -> float | None:
        """One pass over every replica; returns `SOON_S` when one is starting or draining."""
        if not self.elector.is_leader:
            return None
        replicas = _by_key(await self.kube.get(f"{API}/modelreplicas"))
        deployments = _by_key(await self.kube.get(f"{API}/modeldeployments"))
        clusters = {
            c["metadata"]["name"]: c
            for c in ((await self.kube.get(f"{API}/inferenceclusters")) or {}).get("items", [])
        }
        endpoints = _by_key(
            await self.kube.get(
                f"{API}/modelendpoints",
                {"labelSelector": f"{workload.MANAGED_BY}={workload.MANAGER}"},
            )
        )
        depth = controllermetrics.queued(SERVICE, "ModelReplica", len(replicas))

        async def one(name: str, replica: Json) -> bool:
            try:
                spec = replica["spec"]
                deployment = deployments.get(
                    f"{replica['metadata']['namespace']}/{spec.get('deploymentName')}"
                )
                return await self.reconcile(
                    replica, clusters.get(spec["clusterName"]), deployment, endpoints.get(name)
                )
            except Exception as error:  # one replica's failure never stops the others
                log.warning(
                    "reconcile failed",
                    extra={"fields": {"object": f"ModelReplica {name}", "error": str(error)}},
                )
                return False
            finally:
                depth.dec()

        soon = await asyncio.gather(*(one(name, r) for name, r in replicas.items()))
        for name, endpoint in endpoints.items():
            if name not in replicas:
                await self._delete_endpoint(endpoint)
        live = {r["metadata"]["uid"] for r in replicas.values()}
        self.applied = {uid: seen for uid, seen in self.applied.items() if uid in live}
        self.withdrawn = {uid: at for uid, at in self.withdrawn.items() if uid in live}
        return SOON_S if any(soon) else None

    async def reconcile(
        self, replica: Json, cluster: Json | None, deployment: Json | None, endpoint: Json | None
    ) -> bool:
        """Observe, decide and act for one replica; True when it should change soon."""
        meta = replica["metadata"]
        cluster_name = replica["spec"]["clusterName"]
        with controllermetrics.reconciling(SERVICE, "ModelReplica"):
            deleting = bool(meta.get("deletionTimestamp"))
            if not deleting and FINALIZER not in (meta.get("finalizers") or []):
                await self._set_finalizer(replica, [FINALIZER])
            rendered: workload.Rendered | None = None
            sync_error: str | None = None
            unsupported = False
            if cluster is not None:
                try:
                    rendered = workload.render(replica)
                except workload.UnsupportedError as error:
                    sync_error, unsupported = str(error), True
            workloads: tuple[Json, ...] | None = None
            healthy: bool | None = None
            if cluster is not None and deleting:
                workloads = await self._leftovers(cluster_name, replica)
            elif cluster is not None and rendered is not None:
                if self._needs_apply(replica):
                    sync_error = await self._apply(cluster_name, rendered, replica)
                workloads = await self._workloads(cluster_name, rendered)
                if workloads:
                    healthy = await self._healthy(cluster, replica)
            seen = Observed(
                cluster=cluster,
                deployment=deployment,
                endpoint=endpoint,
                workloads=workloads,
                sync_error=sync_error,
                unsupported=unsupported,
                healthy=healthy,
                withdrawn_at=self.withdrawn.get(meta["uid"]),
            )
            now = datetime.datetime.now(datetime.UTC)
            decision = decide(replica, seen, now)
            if decision.endpoint is not None:
                await self._apply_endpoint(decision.endpoint, endpoint)
            elif endpoint is not None:
                await self._delete_endpoint(endpoint)
                if deleting:
                    self.withdrawn[meta["uid"]] = datetime.datetime.now(datetime.UTC)
            if _status_changed(replica.get("status") or {}, decision.status):
                await self._write_status(replica, decision.status)
            if decision.teardown:
                await self._teardown(cluster_name, replica)
            if decision.release:
                await self._set_finalizer(replica, [])
                log.info(
                    "finalizer released",
                    extra={"fields": {"object": f"ModelReplica {key(replica)}",
                                      "cluster": cluster_name}},
                )  # fmt: skip
            return expects_change(replica, decision, now)

    def _needs_apply(self, replica: Json) -> bool:
        meta = replica["metadata"]
        last = self.applied.get(meta["uid"])
        if last is None or last[0] != meta.get("generation"):
            return True
        return time.monotonic() - last[1] > REAPPLY_S

    async def _apply(self, cluster: str, rendered: workload.Rendered, replica: Json) -> str | None:
        """Apply every rendered object, then prune what this replica owned and no longer
        renders (e.g. a ResourceClaimTemplate replaced after a device-request edit)."""
        meta = replica["metadata"]
        try:
            for obj in rendered.objects:
                await self.fleet.apply(cluster, obj)
            wanted = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects}
            for api_version, kind, name in await self._owned(cluster, replica):
                if (kind, name) not in wanted:
                    await self.fleet.delete(cluster, api_version, kind, meta["namespace"], name)
        except FleetError as error:
            self.applied.pop(meta["uid"], None)
            return f"applying on {cluster}: {error.message}"
        self.applied[meta["uid"]] = (meta.get("generation") or 0, time.monotonic())
        log.info(
            "replica applied",
            extra={"fields": {"object": f"ModelReplica {key(replica)}",
                              "generation": meta.get("generation"), "cluster": cluster,
                              "objects": len(rendered.objects)}},
        )  # fmt: skip
        return None

    async def _owned(self, cluster: str, replica: Json) -> list[tuple[str, str, str]]:
        """(apiVersion, kind, name) of every object on `cluster` labelled as this replica's."""
        labels = workload.managed_labels(replica)
        selector = f"{workload.REPLICA_LABEL}={labels[workload.REPLICA_LABEL]}"
        namespace = replica["metadata"]["namespace"]
        found = []
        for api_version, kind in OWNED_KINDS:
            for obj in await self.fleet.list(cluster, api_version, kind, namespace, selector):
                found.append((api_version, kind, obj["metadata"]["name"]))
        return found

    async def _workloads(
        self, cluster: str, rendered: workload.Rendered
    ) -> tuple[Json, ...] | None:
        found = []
        try:
            for obj in rendered.objects:
                if (obj["apiVersion"], obj["kind"]) not in WORKLOAD_KINDS:
                    continue
                meta = obj["metadata"]
                live = await self.fleet.get(
                    cluster, obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]
                )
                if live is not None:
                    found.append(live)
        except FleetError:
            return None
        return tuple(found)

    async def _leftovers(self, cluster: str, replica: Json) -> tuple[Json, ...] | None:
        """What of a replica being deleted is still on its cluster (None: cannot tell)."""
        try:
            owned = await self._owned(cluster, replica)
        except FleetError:
            return None
        return tuple({"kind": kind, "metadata": {"name": name}} for _, kind, name in owned)

    async def _healthy(self, cluster: Mapping[str, Any], replica: Json) -> bool:
        url = gateway_url(cluster)
        if url is None:
            return False
        try:
            reply = await self.http.get(f"{url}{route_path(replica)}health")
        except httpx.HTTPError:
            return False
        return reply.status_code == 200

    async def _teardown(self, cluster: str, replica: Json) -> None:
        """Delete everything on `cluster` labelled as this replica's, route first."""
        for api_version, kind, name in await self._owned(cluster, replica):
            await self.fleet.delete(
                cluster, api_version, kind, replica["metadata"]["namespace"], name
            )

    async def _set_finalizer(self, replica: Json, finalizers: list[str]) -> None:
        meta = replica["metadata"]
        await self.kube.own_finalizers(
            _path(meta["namespace"], "modelreplicas", meta["name"]),
            {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica", **replica},
            finalizers,
        )

    async def _write_status(self, replica: Json, status: Json) -> None:
        meta = replica["metadata"]
        body = {"status": {**status, "address": status.get("address")}}
        await self.kube.merge_patch(
            _path(meta["namespace"], "modelreplicas", meta["name"]) + "/status", body
        )

    async def _apply_endpoint(self, wanted: Json, existing: Json | None) -> None:
        if existing is not None and _same_endpoint(existing, wanted):
            return
        meta = wanted["metadata"]
        await self.kube.apply(_path(meta["namespace"], "modelendpoints", meta["name"]), wanted)
        log.info(
            "endpoint published",
            extra={
                "fields": {"object": f"ModelEndpoint {key(wanted)}", "url": wanted["spec"]["url"]}
            },
        )

    async def _delete_endpoint(self, endpoint: Json) -> None:
        meta = endpoint["metadata"]
        await self.kube.delete(_path(meta["namespace"], "modelendpoints", meta["name"]))
        log.info(
            "endpoint withdrawn", extra={"fields": {"object": f"ModelEndpoint {key(endpoint)}"}}
        )


def _same_endpoint(existing: Json, wanted: Json) -> bool:
    labels = existing["metadata"].get("labels") or {}
    return existing.get("spec") == wanted["spec"] and all(
        labels.get(k) == v for k, v in wanted["metadata"]["labels"].items()
    )


def _status_changed(old: Json, new: Json) -> bool:
    return any(old.get(k) != new.get(k) for k in ("conditions", "observedGeneration", "address"))
