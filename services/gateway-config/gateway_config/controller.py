"""One gateway-config pass: observe the control cluster, decide with `decide.decide`, apply.

Only the leader observes and writes. It lists InferenceGateways, ModelServices,
ModelEndpoints, the Gateway `<namespace>/modelplane-gateway`, the GatewayClass,
the backend CA bundle ConfigMap (with `--backend-ca-configmap`) and every
object labelled as managed by gateway-config; then, one write at a
time and each on its own (a failed write is logged by name and the others are
still made): server-side apply of the changed objects (field manager
`modelplane-gateway-config`), deletion of managed objects no longer wanted,
and status merge patches through the status subresources.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from modelplane import controllermetrics
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector
from modelplane.wellknown import API, MANAGED_BY
from modelplane.writes import Write, WritesFailedError, perform

from gateway_config.decide import Decision, Key, Settings, Snapshot, StatusPatch, decide
from gateway_config.render import GATEWAY_NAME, MANAGER

SERVICE = "gateway-config"
RESYNC_S = 10.0
GATEWAY_API = "/apis/gateway.networking.k8s.io/v1"
SLICES_API = "/apis/discovery.k8s.io/v1"
SELECTOR = {"labelSelector": f"{MANAGED_BY}={MANAGER}"}
COLLECTIONS = {
    "GatewayClass": (GATEWAY_API, "gatewayclasses", False),
    "Gateway": (GATEWAY_API, "gateways", True),
    "HTTPRoute": (GATEWAY_API, "httproutes", True),
    "Service": ("/api/v1", "services", True),
    "EndpointSlice": (SLICES_API, "endpointslices", True),
    "BackendTLSPolicy": (GATEWAY_API, "backendtlspolicies", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
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
)
log = logging.getLogger("gateway_config")


def path(kind: str, namespace: str = "", name: str = "") -> str:
    """The API path of a collection (all namespaces when `namespace` is empty) or object."""
    base, plural, namespaced = COLLECTIONS[kind]
    where = f"{base}/{plural}"
    if namespaced and namespace:
        where = f"{base}/namespaces/{namespace}/{plural}"
    return f"{where}/{name}" if name else where


def watched_paths(namespace: str, backend_ca: str | None = None) -> list[str]:
    """What wakes a pass: the kinds it reads, cluster-wide, and of those it writes only its
    own (by the managed-by label), so other teams' Services never wake it; the Gateway
    and, with a backend CA bundle, the ConfigMaps of its own namespace."""
    own = f"?labelSelector={MANAGED_BY}={MANAGER}"
    written = ("HTTPRoute", "Service", "EndpointSlice", "BackendTLSPolicy")
    paths = [
        path("InferenceGateway"),
        path("ModelService"),
        path("ModelEndpoint"),
        path("Gateway", namespace),
        *(path(kind) + own for kind in written),
    ]
    if backend_ca:
        paths += [path("ConfigMap", namespace), path("ConfigMap") + own]
    return paths


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


class GatewayConfig:
    def __init__(self, kube: Kube, elector: LeaderElector, settings: Settings) -> None:
        self.kube = kube
        self.elector = elector
        self.settings = settings

    async def _list(self, kind: str, params: dict[str, str] | None = None) -> list[Json]:
        listing = await self.kube.get(path(kind), params) or {}
        items: list[Json] = listing.get("items") or []
        for item in items:
            item.setdefault("kind", kind)
        return items

    async def observe(self) -> Snapshot:
        managed: list[Json] = []
        for kind in MANAGED_KINDS:
            managed += await self._list(kind, SELECTOR)
        ns, ca = self.settings.namespace, self.settings.backend_ca
        return Snapshot(
            inference_gateways=await self._list("InferenceGateway"),
            model_services=await self._list("ModelService"),
            model_endpoints=await self._list("ModelEndpoint"),
            gateway=await self.kube.get(path("Gateway", ns, GATEWAY_NAME)),
            gateway_class=await self._object("GatewayClass", self.settings.gateway_class),
            backend_ca=await self.kube.get(path("ConfigMap", ns, ca)) if ca else None,
            managed=managed,
        )

    async def _object(self, kind: str, name: str) -> Json | None:
        found = await self.kube.get(path(kind, name=name))
        if found is not None:
            found.setdefault("kind", kind)
        return found

    async def reconcile_all(self) -> None:
        if not self.elector.is_leader:
            return
        try:
            with controllermetrics.reconciling(SERVICE, "ModelService"):
                decision = decide(await self.observe(), self.settings, _now())
                await self._write(decision)
        except WritesFailedError as error:
            log.warning("some writes failed", extra={"fields": {"error": str(error)}})

    async def _write(self, decision: Decision) -> None:
        writes = [self._apply(obj) for obj in decision.apply]
        writes += [self._delete(k) for k in decision.delete]
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
