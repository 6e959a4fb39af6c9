"""One endpoint-manager pass: observe every ModelReplica, `decide`, carry the decision out.

Only the leader acts. A pass reads ModelReplicas, ModelDeployments,
InferenceClusters, ModelCaches and endpoint-manager's ModelEndpoints from the loop's `Cache`
(list + watch of the control cluster: no API request to observe them), keeps
`RemoteCache` following exactly the clusters that replicas name (their
objects arrive through `Fleet.Watch`; nothing on a cluster is polled), then per
replica, concurrently and each on its own (one failing replica never holds up
another):
- observe: its cluster, deployment and endpoint from the cache, its objects on
  the cluster from the cache, and what this process remembers of it (the last
  apply, the last health probe, when its endpoint was withdrawn);
- decide: `decide.decide(replica, observed, now)`;
- carry out, in order: the finalizer, the apply through `Fleet`, the health
  probe (`health.Prober`: bounded and timed out); when it applied or probed,
  decide once more with the outcome; then the `APPLIED_ON` annotation (merge patch),
  the prune through `Fleet`, the endpoint (server-side apply or delete), the status
  (status subresource), the teardown through `Fleet` and the finalizer's release.
  A replica whose finalizer this process released is left alone afterwards (the cache
  may still show it for a moment; releasing twice would try to create it anew). A replica
  deleted just before its finalizer is added (the write is refused: a finalizer-only apply
  cannot create one) is left alone too, with nothing applied for it.
ModelEndpoints this service made whose replica is gone are deleted. When a
replica expects a change within seconds that no event reports (`Decision.soon`:
a health probe to retry, a drain to wait out), the pass asks the loop to run
again after `SOON_S` instead of `RESYNC_S`. A change on a cluster calls `wake`
(set it to the loop's wake-up) so the next pass comes at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import kr8s
from modelplane import conditions, controllermetrics
from modelplane.cache import Cache
from modelplane.fleetclient import FleetClient, FleetError
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.wellknown import API, API_VERSION, MANAGED_BY, Json

from endpoint_manager import cachegate, workload
from endpoint_manager.decide import Applied, Decision, Health, Observed, Ref, decide
from endpoint_manager.health import Prober
from endpoint_manager.remote import RemoteCache
from endpoint_manager.replica import APPLIED_ON, FINALIZER, key

SERVICE = "endpoint-manager"
RESYNC_S = 2.0
SOON_S = 0.5
log = logging.getLogger("endpoint_manager")


REPLICAS = f"{API}/modelreplicas"
DEPLOYMENTS = f"{API}/modeldeployments"
CLUSTERS = f"{API}/inferenceclusters"
CACHES = f"{API}/modelcaches"
ENDPOINTS = f"{API}/modelendpoints?labelSelector={MANAGED_BY}={workload.MANAGER}"
"""Only the ModelEndpoints this service made."""
NOTHING_REACHED = ("FAILED_PRECONDITION", "NOT_FOUND")
"""Fleet codes of a call that reached no cluster: none usable (no kubeconfig) or none known
(the object-level NOT_FOUND also means nothing was made there)."""


def watched_paths() -> list[str]:
    return [REPLICAS, DEPLOYMENTS, CLUSTERS, ENDPOINTS, CACHES]


def _path(namespace: str, plural: str, name: str) -> str:
    return f"{API}/namespaces/{namespace}/{plural}/{name}"


def _by_key(items: list[Json]) -> dict[str, Json]:
    return {key(item): item for item in items}


def cluster_token(cluster: Mapping[str, Any]) -> str:
    """What changes when a cluster comes back: its Ready status and its gateway address."""
    status = cluster.get("status") or {}
    ready = [
        c.get("status") for c in status.get("conditions") or [] if c.get("type") == conditions.READY
    ]
    return f"{ready[0] if ready else 'Unknown'} {status.get('gatewayAddress') or ''}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class EndpointManager:
    def __init__(
        self,
        kube: Kube,
        fleet: FleetClient,
        elector: LeaderElector,
        prober: Prober,
        cache: Cache,
        clock: Callable[[], datetime.datetime] = _now,
        router_image: str = workload.DEFAULT_ROUTER_IMAGE,
    ) -> None:
        """`cache` holds `watched_paths()`: the one the loop keeps current; `router_image`
        runs the router of PrefillDecode replicas."""
        self.router_image = router_image
        self.kube = kube
        self.fleet = fleet
        self.elector = elector
        self.cache = cache
        self.prober = prober
        self.clock = clock
        self.wake: Callable[[], None] = lambda: None
        self.remote = RemoteCache(fleet, lambda: self.wake())
        self.applied: dict[str, Applied] = {}  # replica uid -> its last apply
        self.health: dict[str, Health] = {}  # replica uid -> its last probe
        self.withdrawn: dict[str, datetime.datetime] = {}  # replica uid -> endpoint withdrawn
        self.released: dict[str, bool] = {}  # replica uids whose finalizer this process released

    async def reconcile_all(self) -> float | None:
        """One pass over every replica; returns `SOON_S` when one expects a change soon."""
        if not self.elector.is_leader:
            self.remote.track({})
            return None
        replicas = _by_key(self.cache.items(REPLICAS))
        deployments = _by_key(self.cache.items(DEPLOYMENTS))
        clusters = {c["metadata"]["name"]: c for c in self.cache.items(CLUSTERS)}
        endpoints = _by_key(self.cache.items(ENDPOINTS))
        named = {r["spec"]["clusterName"] for r in replicas.values()}
        self.remote.track({n: cluster_token(c) for n, c in clusters.items() if n in named})
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
        for memory in (self.applied, self.health, self.withdrawn, self.released):
            for uid in [u for u in memory if u not in live]:
                del memory[uid]
        return SOON_S if any(soon) else None

    def observe(
        self, replica: Json, cluster: Json | None, deployment: Json | None, endpoint: Json | None
    ) -> Observed:
        """What is known of `replica` now, without any call."""
        meta, uid = replica["metadata"], replica["metadata"]["uid"]
        label = workload.managed_labels(replica)[workload.REPLICA_LABEL]
        cache = cachegate.cache_name(replica)
        return Observed(
            cluster=cluster,
            deployment=deployment,
            endpoint=endpoint,
            remote=self.remote.owned(replica["spec"]["clusterName"], meta["namespace"], label),
            applied=self.applied.get(uid),
            health=self.health.get(uid),
            withdrawn_at=self.withdrawn.get(uid),
            router_image=self.router_image,
            cache=self.cache.get(CACHES, cache, meta["namespace"]) if cache else None,
        )

    async def reconcile(
        self, replica: Json, cluster: Json | None, deployment: Json | None, endpoint: Json | None
    ) -> bool:
        """Observe, decide and carry out for one replica; True when it expects a change soon."""
        if replica["metadata"]["uid"] in self.released:
            return False
        with controllermetrics.reconciling(SERVICE, "ModelReplica"):
            seen = self.observe(replica, cluster, deployment, endpoint)
            now = self.clock()
            decision = decide(replica, seen, now)
            if decision.add_finalizer and not await self._set_finalizer(replica, [FINALIZER]):
                return False  # deleted meanwhile: nothing to apply, nothing to release
            if decision.apply or decision.probe:
                seen = await self._outcomes(replica, seen, decision, now)
                decision = decide(replica, seen, now)
            await self._settle(replica, endpoint, decision)
            return decision.soon

    async def _outcomes(
        self, replica: Json, seen: Observed, decision: Decision, now: datetime.datetime
    ) -> Observed:
        """Apply and probe as `decision` says; what they found, for the next decision."""
        uid = replica["metadata"]["uid"]
        if decision.apply:
            self.applied[uid] = await self._apply(replica, decision.apply, now)
            seen = replace(seen, applied=self.applied[uid])
        if decision.probe:
            self.health[uid] = Health(await self.prober.probe(decision.probe), now)
            seen = replace(seen, health=self.health[uid])
        return seen

    async def _settle(self, replica: Json, endpoint: Json | None, decision: Decision) -> None:
        """The prune, the endpoint, the status, the teardown and the release, in order."""
        meta = replica["metadata"]
        if decision.mark_applied:
            await self.kube.merge_patch(
                _path(meta["namespace"], "modelreplicas", meta["name"]),
                {"metadata": {"annotations": {APPLIED_ON: replica["spec"]["clusterName"]}}},
            )
        await self._delete_remote(replica, decision.prune)
        if decision.publish is not None:
            await self._publish(decision.publish)
        elif decision.withdraw and endpoint is not None:
            await self._delete_endpoint(endpoint)
            if meta.get("deletionTimestamp"):
                self.withdrawn[meta["uid"]] = self.clock()
        if decision.status is not None:
            await self.kube.merge_patch(
                _path(meta["namespace"], "modelreplicas", meta["name"]) + "/status",
                {"status": decision.status},
            )
        await self._delete_remote(replica, decision.teardown)
        if decision.release:
            await self._set_finalizer(replica, [])  # False: gone already, released all the same
            self.released[meta["uid"]] = True
            log.info(
                "finalizer released",
                extra={"fields": {"object": f"ModelReplica {key(replica)}",
                                  "cluster": replica["spec"]["clusterName"]}},
            )  # fmt: skip

    async def _apply(
        self, replica: Json, objects: tuple[Json, ...], now: datetime.datetime
    ) -> Applied:
        meta, cluster = replica["metadata"], replica["spec"]["clusterName"]
        generation = int(meta.get("generation") or 0)
        returned = []
        try:
            for obj in objects:
                applied = await self.fleet.apply(cluster, obj)
                got = int((applied.get("metadata") or {}).get("generation") or 0)
                returned.append((obj["kind"], obj["metadata"]["name"], got))
        except FleetError as error:
            reached = bool(returned) or error.code not in NOTHING_REACHED
            why = f"applying on {cluster}: {error.message}"
            return Applied(generation, now, why, reached=reached)
        log.info(
            "replica applied",
            extra={"fields": {"object": f"ModelReplica {key(replica)}", "generation": generation,
                              "cluster": cluster, "objects": len(objects)}},
        )  # fmt: skip
        return Applied(generation, now, None, tuple(returned))

    async def _delete_remote(self, replica: Json, refs: tuple[Ref, ...]) -> None:
        """Delete `refs` on the replica's cluster, in order; forget those already gone."""
        cluster = replica["spec"]["clusterName"]
        for api_version, kind, namespace, name in refs:
            if not await self.fleet.delete(cluster, api_version, kind, namespace, name):
                self.remote.forget(cluster, kind, namespace, name)

    async def _set_finalizer(self, replica: Json, finalizers: list[str]) -> bool:
        """Hold exactly `finalizers` on the replica; False when it no longer exists (the API
        server refuses to create it from a finalizer-only apply)."""
        meta = replica["metadata"]
        path = _path(meta["namespace"], "modelreplicas", meta["name"])
        try:
            await self.kube.own_finalizers(
                path, {"apiVersion": API_VERSION, "kind": "ModelReplica", **replica}, finalizers
            )
        except kr8s.ServerError:
            if await self.kube.get(path) is None:
                return False
            raise
        return True

    async def _publish(self, wanted: Json) -> None:
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
