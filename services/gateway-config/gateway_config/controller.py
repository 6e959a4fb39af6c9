"""One gateway-config pass: read the cache, decide with `decide.decide`, apply.

The decision is global (one front door, and pruning compares every managed
object with everything wanted), so the loop has one key (`loop.ALL`): any change
of a watched collection queues one pass. Every copy keeps a `Cache` (list +
watch) of: InferenceGateways, ModelServices, ModelEndpoints, the Gateway
`<namespace>/modelplane-gateway`, the GatewayClass, the backend CA bundle
ConfigMap (with `--backend-ca-configmap`), every object labelled as managed
by gateway-config and the key Secrets of `--api-key-namespace` (a change to a key
re-renders the key Middlewares: revoking a key is one pass plus Traefik's reload);
a pass reads them from it, with no API request. Key Secrets the table leaves out
are logged by name and field when that list changes. Only the
leader decides and writes, one write at a time and each on its own (a failed
write is logged by name, the others are still made, and the loop retries the
pass after a backoff): server-side apply of the changed objects (field manager
`modelplane-gateway-config`), deletion of managed objects no longer wanted,
merge patches of the `gateway_config.handover` stamp on objects no route names any
more, and status merge patches through the status subresources. A pass returns when
to run again for a handover falling due (the loop queues it then).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from modelplane import controllermetrics
from modelplane.cache import Cache
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector
from modelplane.wellknown import API, MANAGED_BY
from modelplane.writes import Write, perform

from gateway_config import handover, keys
from gateway_config.decide import Decision, Key, Settings, Snapshot, StatusPatch, decide
from gateway_config.render import GATEWAY_NAME, MANAGER

SERVICE = "gateway-config"
RESYNC_S = 60.0  # a safety net: every input is watched
GATEWAY_API = "/apis/gateway.networking.k8s.io/v1"
SLICES_API = "/apis/discovery.k8s.io/v1"
TRAEFIK_API = "/apis/traefik.io/v1alpha1"
COLLECTIONS = {
    "GatewayClass": (GATEWAY_API, "gatewayclasses", False),
    "Gateway": (GATEWAY_API, "gateways", True),
    "HTTPRoute": (GATEWAY_API, "httproutes", True),
    "Service": ("/api/v1", "services", True),
    "EndpointSlice": (SLICES_API, "endpointslices", True),
    "BackendTLSPolicy": (GATEWAY_API, "backendtlspolicies", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Middleware": (TRAEFIK_API, "middlewares", True),
    "TraefikService": (TRAEFIK_API, "traefikservices", True),
    "InferenceGateway": (API, "inferencegateways", False),
    "ModelService": (API, "modelservices", True),
    "ModelEndpoint": (API, "modelendpoints", True),
}
SUMMARY = ("Ready", "Accepted")
MANAGED_KINDS = (
    "Gateway",
    "HTTPRoute",
    "Service",
    "EndpointSlice",
    "BackendTLSPolicy",
    "ConfigMap",
    "Middleware",
)
"""Middlewares whatever `Settings.retries` says: the API keys' plugin ones exist with
`--no-retries` too, and only what is observed can be left alone or pruned. Where Traefik's
CRDs are not installed the list answers 404 and the cache holds none (listing again every
10 s)."""
RETRY_KINDS = ("TraefikService",)
"""Managed too while `Settings.retries` is on (Traefik's kind: absent where it is not installed;
the chart's uninstall hook does not wait on them, their ModelService's deletion removes them)."""
log = logging.getLogger("gateway_config")


def path(kind: str, namespace: str = "", name: str = "") -> str:
    """The API path of a collection (all namespaces when `namespace` is empty) or object."""
    base, plural, namespaced = COLLECTIONS[kind]
    where = f"{base}/{plural}"
    if namespaced and namespace:
        where = f"{base}/namespaces/{namespace}/{plural}"
    return f"{where}/{name}" if name else where


def by_name(kind: str, name: str, namespace: str = "") -> str:
    """The collection path that holds only the object `name` (a field selector)."""
    return f"{path(kind, namespace)}?fieldSelector=metadata.name={name}"


def managed(kind: str) -> str:
    """The collection path of gateway-config's own objects of `kind`, cluster-wide."""
    return f"{path(kind)}?labelSelector={MANAGED_BY}={MANAGER}"


def managed_kinds(settings: Settings) -> tuple[str, ...]:
    """The kinds of gateway-config's own objects with these settings."""
    return MANAGED_KINDS + (RETRY_KINDS if settings.retries else ())


def watched_paths(settings: Settings) -> list[str]:
    """What the cache holds: the kinds it reads, cluster-wide; the Gateway, the
    GatewayClass and the CA bundle by name; of the kinds it writes only its own (by the
    managed-by label), so other teams' Services never wake it."""
    paths = [
        path("InferenceGateway"),
        path("ModelService"),
        path("ModelEndpoint"),
        by_name("Gateway", GATEWAY_NAME, settings.namespace),
        by_name("GatewayClass", settings.gateway_class),
        *(managed(kind) for kind in managed_kinds(settings)),
        keys.secrets_path(settings.key_namespace),
    ]
    if settings.backend_ca:
        paths.append(by_name("ConfigMap", settings.backend_ca, settings.namespace))
    return paths


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


class GatewayConfig:
    def __init__(
        self,
        kube: Kube,
        elector: LeaderElector,
        settings: Settings,
        cache: Cache,
        clock: Callable[[], str] = _now,
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.elector = elector
        self.settings = settings
        self.cache = cache
        self.problems: tuple[str, ...] = ()

    def _one(self, collection: str) -> Json | None:
        found = self.cache.items(collection)
        return found[0] if found else None

    def observe(self) -> Snapshot:
        """What the cache holds now (the objects themselves: read, never mutated)."""
        settings, items = self.settings, self.cache.items
        ca = settings.backend_ca
        return Snapshot(
            inference_gateways=items(path("InferenceGateway")),
            model_services=items(path("ModelService")),
            model_endpoints=items(path("ModelEndpoint")),
            gateway=self._one(by_name("Gateway", GATEWAY_NAME, settings.namespace)),
            gateway_class=self._one(by_name("GatewayClass", settings.gateway_class)),
            backend_ca=self._one(by_name("ConfigMap", ca, settings.namespace)) if ca else None,
            managed=[obj for kind in managed_kinds(settings) for obj in items(managed(kind))],
            api_keys=items(keys.secrets_path(settings.key_namespace)),
        )

    async def reconcile_all(self) -> float | None:
        """One pass; `WritesFailedError` (after every other write) makes the loop retry.
        Returns when to pass again for a handover falling due (`gateway_config.handover`)."""
        if not self.elector.is_leader:
            return None
        with controllermetrics.reconciling(SERVICE, "ModelService"):
            decision = decide(self.observe(), self.settings, self.clock())
            self._report(decision.problems)
            await self._write(decision)
        return decision.recheck_s

    def _report(self, problems: tuple[str, ...]) -> None:
        """Log the key Secrets left out, once per change of that list."""
        if problems != self.problems:
            for problem in problems:
                log.warning("API key left out", extra={"fields": {"problem": problem}})
        self.problems = problems

    async def _write(self, decision: Decision) -> None:
        writes = [self._apply(obj) for obj in decision.apply]
        writes += [self._delete(k) for k in decision.delete]
        writes += [self._annotate(k, value) for k, value in decision.annotate]
        writes += [self._status(patch) for patch in decision.status]
        await perform(SERVICE, "ModelService", writes, log)

    def _apply(self, obj: Json) -> tuple[str, Write]:
        meta: dict[str, Any] = obj["metadata"]
        namespace = meta.get("namespace", "")
        what = _describe(obj["kind"], namespace, meta["name"])

        async def write() -> None:
            await self.kube.apply(path(obj["kind"], namespace, meta["name"]), obj)
            owner = (meta.get("ownerReferences") or [{}])[0]
            log.info(
                "applied",
                extra={"fields": {"object": what, "owner": owner.get("name")}},
            )

        return what, write

    def _delete(self, key: Key) -> tuple[str, Write]:
        kind, namespace, name = key
        what = _describe(kind, namespace, name)

        async def write() -> None:
            if await self.kube.delete(path(kind, namespace, name)):
                log.info("deleted", extra={"fields": {"object": what}})

        return what, write

    def _annotate(self, key: Key, value: str | None) -> tuple[str, Write]:
        """Stamp (or unstamp: None) an object as named by no route since `value`."""
        kind, namespace, name = key
        what = _describe(kind, namespace, name)

        async def write() -> None:
            body = {"metadata": {"annotations": {handover.UNUSED_SINCE: value}}}
            if await self.kube.merge_patch(path(kind, namespace, name), body) is not None:
                log.info("unused since" if value else "in use again",
                         extra={"fields": {"object": what, "since": value}})  # fmt: skip

        return f"{what} {handover.UNUSED_SINCE}", write

    def _status(self, patch: StatusPatch) -> tuple[str, Write]:
        what = _describe(patch.kind, patch.namespace, patch.name)

        async def write() -> None:
            target = path(patch.kind, patch.namespace, patch.name) + "/status"
            await self.kube.merge_patch(target, {"status": patch.status})
            main = [c for c in patch.status.get("conditions") or [] if c["type"] in SUMMARY]
            ready = main[0] if main else {}
            log.info(
                "status written",
                extra={"fields": {"object": what, "generation": patch.generation,
                                  ready.get("type", "condition"): ready.get("status"),
                                  "reason": ready.get("reason")}},
            )  # fmt: skip

        return f"{what} status", write
