"""One cache-hydrator pass: observe every ModelCache, `decide`, carry the decision out.

Only the leader acts. A pass reads ModelCaches, InferenceClusters and ModelReplicas from
the loop's `Cache` (list + watch of the control cluster), then per cache, concurrently
and each on its own (one failing cache never holds up another):
- observe: the replicas that use it; its `authSecret`, read by name with one GET (never
  listed, its value never logged; only the named key is copied); on each Ready cluster
  of its footprint or of its status, its PersistentVolumeClaims, Jobs, ConfigMaps and
  pods there (`Fleet.List`, labelled as the cache's, in its namespace);
- decide: `decide.decide(cache, observed, now)`;
- carry out, in order: the finalizer, the applies and deletes through `Fleet`, the
  status (status subresource), the finalizer's release.
The cluster side is listed on every pass, not watched: while a cache is Hydrating
somewhere the pass comes again after `SOON_S`, so its status mirrors the job's reports
(every 2 s) within `SOON_S` plus one report; otherwise every `RESYNC_S`.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

from modelplane import controllermetrics, naming
from modelplane.cache import Cache
from modelplane.fleetclient import FleetClient, FleetError
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.wellknown import API, API_VERSION, Json

from cache_hydrator import render
from cache_hydrator.decide import FINALIZER, Decision, Observed, decide, footprint
from cache_hydrator.remote import Ref

SERVICE = "cache-hydrator"
RESYNC_S = 10.0
SOON_S = 2.0
log = logging.getLogger("cache_hydrator")

CACHES = f"{API}/modelcaches"
CLUSTERS = f"{API}/inferenceclusters"
REPLICAS = f"{API}/modelreplicas"
LISTED = (
    ("v1", "PersistentVolumeClaim"),
    ("batch/v1", "Job"),
    ("v1", "ConfigMap"),
    ("v1", "Pod"),
)
"""What a pass lists of each cache on a cluster (the rest is deleted by name)."""


def watched_paths() -> list[str]:
    return [CACHES, CLUSTERS, REPLICAS]


def _key(obj: Json) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ready(cluster: Json) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (cluster.get("status") or {}).get("conditions") or []
    )


class CacheHydrator:
    def __init__(
        self,
        kube: Kube,
        fleet: FleetClient,
        elector: LeaderElector,
        cache: Cache,
        job: render.JobConfig,
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        """`cache` holds `watched_paths()`: the one the loop keeps current."""
        self.kube = kube
        self.fleet = fleet
        self.elector = elector
        self.cache = cache
        self.job = job
        self.clock = clock
        self.applied: dict[tuple[str, str], str] = {}  # (cache uid, cluster) -> digest
        self.apply_errors: dict[tuple[str, str], str] = {}

    async def reconcile_all(self) -> float | None:
        """One pass over every ModelCache; `SOON_S` when one is still moving."""
        if not self.elector.is_leader:
            return None
        caches = self.cache.items(CACHES)
        clusters = {c["metadata"]["name"]: c for c in self.cache.items(CLUSTERS)}
        replicas = self.cache.items(REPLICAS)
        depth = controllermetrics.queued(SERVICE, "ModelCache", len(caches))

        async def one(cache: Json) -> bool:
            try:
                return await self.reconcile(cache, clusters, replicas)
            except Exception as error:  # one cache's failure never stops the others
                log.warning(
                    "reconcile failed",
                    extra={"fields": {"object": f"ModelCache {_key(cache)}", "error": str(error)}},
                )
                return True
            finally:
                depth.dec()

        soon = await asyncio.gather(*(one(c) for c in caches))
        live = {c["metadata"]["uid"] for c in caches}
        for memory in (self.applied, self.apply_errors):
            for gone in [k for k in memory if k[0] not in live]:
                del memory[gone]
        return SOON_S if any(soon) else None

    async def observe(
        self, cache: Json, clusters: dict[str, Json], replicas: list[Json]
    ) -> Observed:
        meta = cache["metadata"]
        uid, namespace = meta["uid"], meta.get("namespace") or "default"
        users = tuple(
            r
            for r in replicas
            if r["metadata"].get("namespace") == namespace
            and ((r.get("spec") or {}).get("modelCacheRef") or {}).get("name") == meta["name"]
        )
        token, problem = None, None
        if not meta.get("deletionTimestamp"):
            token, problem = await self._token(cache)
        known = {e["clusterName"] for e in (cache.get("status") or {}).get("clusters") or []}
        targets = sorted(
            name
            for name in known | set(footprint(cache, clusters))
            if name in clusters and _ready(clusters[name])
        )
        listed = await asyncio.gather(*(self._remote(c, cache) for c in targets))
        return Observed(
            clusters=clusters,
            job=self.job,
            users=users,
            token=token,
            token_problem=problem,
            remote=dict(zip(targets, listed, strict=True)),
            applied={c: d for (u, c), d in self.applied.items() if u == uid},
            apply_errors={c: e for (u, c), e in self.apply_errors.items() if u == uid},
        )

    async def reconcile(self, cache: Json, clusters: dict[str, Json], replicas: list[Json]) -> bool:
        """Observe, decide and carry out for one cache; True when it expects a change soon."""
        with controllermetrics.reconciling(SERVICE, "ModelCache"):
            seen = await self.observe(cache, clusters, replicas)
            decision = decide(cache, seen, self.clock())
            await self._carry_out(cache, decision)
            return decision.soon

    async def _carry_out(self, cache: Json, decision: Decision) -> None:
        meta = cache["metadata"]
        path = f"{API}/namespaces/{meta['namespace']}/modelcaches/{meta['name']}"
        if decision.add_finalizer:
            await self._finalizers(cache, path, [FINALIZER])
        for cluster, objects in decision.apply.items():
            await self._apply(cache, cluster, objects, decision.digests[cluster])
        for cluster, refs in decision.delete.items():
            await self._delete(cluster, refs)
        if decision.status is not None:
            await self.kube.merge_patch(f"{path}/status", {"status": decision.status})
        if decision.release:
            await self._finalizers(cache, path, [])
            log.info(
                "finalizer released", extra={"fields": {"object": f"ModelCache {_key(cache)}"}}
            )

    async def _token(self, cache: Json) -> tuple[dict[str, str] | None, str | None]:
        """The authSecret's one key to copy, or why it cannot be (None, None: no authSecret).
        The Secret is read by name; neither it nor its value is ever logged."""
        meta = cache["metadata"]
        auth = ((cache.get("spec") or {}).get("huggingFace") or {}).get("authSecret")
        if not auth:
            return None, None
        name = f"ModelCache {meta['namespace']}/{meta['name']}"
        key = auth.get("key") or "HF_TOKEN"
        secret = await self.kube.get(
            f"/api/v1/namespaces/{meta['namespace']}/secrets/{auth['name']}"
        )
        if secret is None:
            return None, (
                f"{name} spec.huggingFace.authSecret.name: Secret "
                f"{meta['namespace']}/{auth['name']} not found"
            )
        value = (secret.get("data") or {}).get(key)
        if not value:
            return None, (
                f"{name} spec.huggingFace.authSecret.key: Secret "
                f"{meta['namespace']}/{auth['name']} has no key {key!r}"
            )
        return {key: value}, None

    async def _remote(self, cluster: str, cache: Json) -> tuple[Json, ...] | None:
        """The cache's objects on `cluster` (None when they cannot be listed now)."""
        meta = cache["metadata"]
        selector = ",".join(f"{k}={v}" for k, v in render.labels(cache).items())
        found: list[Json] = []
        try:
            for api_version, kind in LISTED:
                items = await self.fleet.list(
                    cluster, api_version, kind, meta["namespace"], selector
                )
                found += [{**o, "apiVersion": api_version, "kind": kind} for o in items]
        except FleetError as error:
            log.warning(
                "cannot list on cluster",
                extra={"fields": {"object": f"ModelCache {_key(cache)}", "cluster": cluster,
                                  "error": str(error)}},
            )  # fmt: skip
            return None
        return tuple(found)

    async def _apply(
        self, cache: Json, cluster: str, objects: tuple[Json, ...], digest: str
    ) -> None:
        uid = cache["metadata"]["uid"]
        try:
            for obj in objects:
                await self.fleet.apply(cluster, obj)
        except FleetError as error:
            self.apply_errors[(uid, cluster)] = error.message
            self.applied.pop((uid, cluster), None)
            return
        self.apply_errors.pop((uid, cluster), None)
        self.applied[(uid, cluster)] = digest
        log.info(
            "cache applied",
            extra={"fields": {"object": f"ModelCache {_key(cache)}", "cluster": cluster,
                              "objects": len(objects), "claim":
                              naming.cache_claim_name(cache["metadata"]["name"])}},
        )  # fmt: skip

    async def _delete(self, cluster: str, refs: tuple[Ref, ...]) -> None:
        for api_version, kind, namespace, name in refs:
            await self.fleet.delete(cluster, api_version, kind, namespace, name)

    async def _finalizers(self, cache: Json, path: str, finalizers: list[str]) -> None:
        obj: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "ModelCache", **cache}
        await self.kube.own_finalizers(path, obj, finalizers)
