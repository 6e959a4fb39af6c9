"""The gateway-config pass against an in-memory control cluster: what it writes and when.

Each `run` fills a fresh cache from the cluster (one list per watched collection, as the
loop's cache does when it starts) and runs one pass reading from it."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import httpx
import pytest
from gateway_config.controller import COLLECTIONS, GatewayConfig, path, watched_paths
from gateway_config.decide import Settings
from gateway_config.render import backend_name, hop_name
from modelplane.cache import Cache
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.writes import WritesFailedError

from tests import gatewayobjects

Json = dict[str, Any]


class InMemoryControlCluster:
    """Just enough of `modelplane.kube.Kube`: objects by API path, label-selected lists,
    server-side apply as a replace of the given fields, merge patches of status, deletes;
    every write is recorded, and writes to `failing` paths raise a transient error."""

    def __init__(self, *objects: Json) -> None:
        self.objects: dict[str, Json] = {}
        self.writes: list[tuple[str, str]] = []
        self.failing: set[str] = set()
        for obj in objects:
            self.put(obj)

    def put(self, obj: Json) -> None:
        meta = obj["metadata"]
        self.objects[path(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj

    def of_kind(self, kind: str) -> list[Json]:
        return [o for o in self.objects.values() if o["kind"] == kind]

    async def get(self, target: str, params: dict[str, str] | None = None) -> Json | None:
        if target in self.objects:
            return copy.deepcopy(self.objects[target])
        kind = next((k for k in COLLECTIONS if path(k) == target), None)
        namespace = ""
        if kind is None and "/namespaces/" in target:
            base, rest = target.split("/namespaces/", 1)
            namespace, plural = rest.split("/", 1)
            kind = next((k for k, c in COLLECTIONS.items() if c[:2] == (base, plural)), None)
        if kind is None:
            return None
        wanted = dict(
            part.split("=", 1)
            for part in (params or {}).get("labelSelector", "").split(",")
            if part
        )
        fields = (params or {}).get("fieldSelector", "").removeprefix("metadata.name=")
        items = [
            {k: v for k, v in copy.deepcopy(o).items() if k not in ("apiVersion", "kind")}
            for o in self.of_kind(kind)
            if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
            and (not fields or o["metadata"]["name"] == fields)
            and (not namespace or o["metadata"].get("namespace") == namespace)
        ]
        return {"kind": f"{kind}List", "metadata": {"resourceVersion": "1"}, "items": items}

    def _write(self, verb: str, target: str) -> None:
        if target in self.failing:
            raise httpx.ConnectError(f"{verb} {target} refused")
        self.writes.append((verb, target))

    async def apply(self, target: str, body: Json) -> Json:
        self._write("apply", target)
        old = self.objects.get(target, {})
        merged = {**copy.deepcopy(body), "status": old.get("status", {})}
        merged["metadata"] = {**old.get("metadata", {}), **copy.deepcopy(body["metadata"])}
        self.objects[target] = merged
        return merged

    async def merge_patch(self, target: str, body: Json) -> Json | None:
        if not target.endswith("/status"):  # an object's annotations
            self._write("annotate", target)
            meta = self.objects[target]["metadata"]
            merged = {**meta.get("annotations", {}), **body["metadata"]["annotations"]}
            meta["annotations"] = {k: v for k, v in merged.items() if v is not None}
            return self.objects[target]
        self._write("status", target)
        obj = self.objects[target.removesuffix("/status")]
        status = {**obj.get("status", {}), **copy.deepcopy(body["status"])}
        obj["status"] = {k: v for k, v in status.items() if v is not None}
        return obj

    async def delete(self, target: str) -> bool:
        self._write("delete", target)
        return self.objects.pop(target, None) is not None


class Elector:
    def __init__(self, leader: bool) -> None:
        self.is_leader = leader


def inference_gateway(api_keys: Json | None = None) -> Json:
    return gatewayobjects.inference_gateway(uid="u-ig", api_keys=api_keys, api_version=True)


def model_service(name: str, **labels: str) -> Json:
    entry = gatewayobjects.selecting(labels)
    return gatewayobjects.model_service(entry, name=name, uid=f"u-{name}", api_version=True)


def model_endpoint(name: str, url: str, **labels: str) -> Json:
    return gatewayobjects.model_endpoint(
        name, url, labels=labels, rewrite="/", uid=f"u-{name}", generation=1, api_version=True
    )


NOW = "2026-12-01T10:00:00Z"


def run(
    cluster: InMemoryControlCluster,
    leader: bool = True,
    settings: Settings | None = None,
    now: str = NOW,
) -> float | None:
    """One pass at `now`; when it asks to pass again."""
    settings = settings or Settings()
    cache = Cache(cast(Kube, cluster), watched_paths(settings))
    controller = GatewayConfig(
        cast(Kube, cluster), cast(LeaderElector, Elector(leader)), settings, cache, lambda: now
    )

    async def one_pass() -> float | None:
        for informer in cache.informers.values():
            await informer.relist()
        return await controller.reconcile_all()

    return asyncio.run(one_pass())


def fleet() -> InMemoryControlCluster:
    return InMemoryControlCluster(
        inference_gateway(),
        model_service("chat", app="chat"),
        model_endpoint("a", "http://10.240.1.1", app="chat"),
        model_endpoint("b", "http://10.240.1.2", app="chat"),
    )


def test_a_pass_writes_the_front_door_the_routes_and_every_status_then_nothing() -> None:
    cluster = fleet()
    run(cluster)
    a, b = backend_name("chat", "a"), backend_name("chat", "b")
    hop_a, hop_b = hop_name("chat", "a"), hop_name("chat", "b")
    assert cluster.writes == [
        ("apply", "/apis/gateway.networking.k8s.io/v1/gatewayclasses/traefik"),
        ("apply", "/apis/gateway.networking.k8s.io/v1/namespaces/modelplane-system/gateways/modelplane-gateway"),
        ("apply", f"/api/v1/namespaces/ml/services/{a}"),
        ("apply", f"/api/v1/namespaces/ml/services/{hop_a}"),
        ("apply", f"/api/v1/namespaces/ml/services/{b}"),
        ("apply", f"/api/v1/namespaces/ml/services/{hop_b}"),
        ("apply", f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{a}"),
        ("apply", f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{hop_a}"),
        ("apply", f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{b}"),
        ("apply", f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{hop_b}"),
        ("apply", "/apis/traefik.io/v1alpha1/namespaces/ml/middlewares/chat"),
        ("apply", f"/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/{a}"),
        ("apply", f"/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/{b}"),
        ("apply", "/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/chat"),
        ("status", "/apis/modelplane.ai/v1alpha1/inferencegateways/default/status"),
        ("status", "/apis/modelplane.ai/v1alpha1/namespaces/ml/modelservices/chat/status"),
        ("status", "/apis/modelplane.ai/v1alpha1/namespaces/ml/modelendpoints/a/status"),
        ("status", "/apis/modelplane.ai/v1alpha1/namespaces/ml/modelendpoints/b/status"),
    ]  # fmt: skip
    cluster.writes.clear()
    run(cluster)
    assert cluster.writes == []


def test_a_copy_that_is_not_the_leader_writes_nothing() -> None:
    cluster = fleet()
    run(cluster, leader=False)
    assert cluster.writes == []


def test_one_failed_write_does_not_stop_the_others_and_the_next_pass_retries_it() -> None:
    cluster = fleet()
    a = backend_name("chat", "a")
    broken = f"/api/v1/namespaces/ml/services/{a}"
    cluster.failing.add(broken)
    with pytest.raises(WritesFailedError, match="services/"):
        run(cluster)
    written = {target for _, target in cluster.writes}
    assert broken not in written
    assert "/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/chat" in written
    assert "/apis/modelplane.ai/v1alpha1/namespaces/ml/modelendpoints/b/status" in written
    cluster.failing.clear()
    cluster.writes.clear()
    run(cluster)
    assert cluster.writes == [("apply", broken)]


def test_the_hop_slices_follow_the_gateway_address() -> None:
    cluster = fleet()
    run(cluster)
    hop_a = path("EndpointSlice", "ml", hop_name("chat", "a"))
    assert cluster.objects[hop_a]["endpoints"] == []
    gateway = cluster.objects[path("Gateway", "modelplane-system", "modelplane-gateway")]
    gateway["status"] = {"addresses": [{"type": "IPAddress", "value": "10.240.0.1"}]}
    cluster.writes.clear()
    run(cluster)
    assert [w for w in cluster.writes if w[0] == "apply"] == [
        ("apply", hop_a),
        ("apply", path("EndpointSlice", "ml", hop_name("chat", "b"))),
    ]
    assert cluster.objects[hop_a]["endpoints"] == [
        {"addresses": ["10.240.0.1"], "conditions": {"ready": True}}
    ]
    assert cluster.objects[hop_a]["ports"][0]["port"] == Settings().hop_port


def test_a_withdrawn_endpoint_loses_its_objects_a_settle_time_after_the_route_moves() -> None:
    cluster = fleet()
    run(cluster)
    gateway = cluster.objects[path("Gateway", "modelplane-system", "modelplane-gateway")]
    gateway["status"] = {"addresses": [{"type": "IPAddress", "value": "10.240.0.1"}]}
    run(cluster)
    service = cluster.objects[path("ModelService", "ml", "chat")]
    assert service["status"]["address"] == "http://10.240.0.1/ml/chat"
    del cluster.objects[path("ModelEndpoint", "ml", "b")]
    cluster.writes.clear()
    # the route moves at once; b's objects are only stamped: Traefik may still route to them
    assert run(cluster, now="2026-12-01T10:00:10Z") == 4  # settle 3 s, whole seconds: 4
    b, hop_b = backend_name("chat", "b"), hop_name("chat", "b")
    b_objects = [
        f"/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/{b}",
        f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{b}",
        f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{hop_b}",
        f"/api/v1/namespaces/ml/services/{b}",
        f"/api/v1/namespaces/ml/services/{hop_b}",
    ]
    assert cluster.writes[0] == (
        "apply",
        "/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/chat",
    )
    assert sorted(cluster.writes[1:-1]) == sorted(("annotate", target) for target in b_objects)
    assert cluster.writes[-1] == (
        "status",
        "/apis/modelplane.ai/v1alpha1/namespaces/ml/modelservices/chat/status",
    )
    route = cluster.objects[path("HTTPRoute", "ml", "chat")]
    assert [r["name"] for r in route["spec"]["rules"][0]["backendRefs"]] == [hop_name("chat", "a")]
    cluster.writes.clear()
    assert run(cluster, now="2026-12-01T10:00:13Z") == 1  # 3 s later: not more than 3 s
    assert cluster.writes == []
    run(cluster, now="2026-12-01T10:00:14Z")
    assert cluster.writes == [("delete", target) for target in b_objects]
    services = sorted(s["metadata"]["name"] for s in cluster.of_kind("Service"))
    assert services == sorted([backend_name("chat", "a"), hop_name("chat", "a")])
    ready = next(c for c in service["status"]["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "ModelService ml/chat routes to 1 ModelEndpoint(s): a"


def test_objects_it_does_not_manage_are_never_deleted() -> None:
    cluster = fleet()
    cluster.put({"kind": "Service", "metadata": {"name": "theirs", "namespace": "ml"}})
    run(cluster)
    assert not [w for w in cluster.writes if w[0] == "delete"]
    assert path("Service", "ml", "theirs") in cluster.objects


@pytest.mark.parametrize("kind", ["Gateway", "HTTPRoute", "Service", "EndpointSlice"])
def test_every_managed_kind_is_cached_by_the_managed_by_selector(kind: str) -> None:
    cluster = fleet()
    cluster.put(
        {
            "kind": kind,
            "metadata": {
                "name": "orphan",
                "namespace": "ml",
                "labels": {"app.kubernetes.io/managed-by": "modelplane-gateway-config"},
            },
        }
    )
    run(cluster)
    assert ("delete", path(kind, "ml", "orphan")) in cluster.writes


def test_the_backend_ca_bundle_is_cached_by_name_and_its_copy_follows_it() -> None:
    source = {"kind": "ConfigMap", "metadata": {"name": "fleet-ca", "namespace": "modelplane-system"},
              "data": {"ca.crt": "PEM-1"}}  # fmt: skip
    cluster = InMemoryControlCluster(
        model_service("chat", app="chat"),
        model_endpoint("p", "https://provider.modelplane.test:8443", app="chat"),
        source,
    )
    settings = Settings(backend_ca="fleet-ca")
    run(cluster, settings=settings)
    p = backend_name("chat", "p")
    copy_path = f"/api/v1/namespaces/ml/configmaps/{p}"
    policy_path = f"/apis/gateway.networking.k8s.io/v1/namespaces/ml/backendtlspolicies/{p}"
    hop_p = hop_name("chat", "p")
    assert [w for w in cluster.writes if w[0] == "apply"] == [
        ("apply", copy_path),
        ("apply", f"/api/v1/namespaces/ml/services/{p}"),
        ("apply", f"/api/v1/namespaces/ml/services/{hop_p}"),
        ("apply", f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{p}"),
        ("apply", f"/apis/discovery.k8s.io/v1/namespaces/ml/endpointslices/{hop_p}"),
        ("apply", policy_path),
        ("apply", "/apis/traefik.io/v1alpha1/namespaces/ml/middlewares/chat"),
        ("apply", f"/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/{p}"),
        ("apply", "/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes/chat"),
    ]
    assert cluster.objects[copy_path]["data"] == {"ca.crt": "PEM-1"}
    cluster.objects[path("ConfigMap", "modelplane-system", "fleet-ca")]["data"] = {
        "ca.crt": "PEM-2"
    }
    cluster.writes.clear()
    run(cluster, settings=settings)
    assert cluster.writes == [("apply", copy_path)]
    assert cluster.objects[copy_path]["data"] == {"ca.crt": "PEM-2"}


def keys_required(required: bool) -> Json:
    return inference_gateway(api_keys={"required": required})


def test_without_retries_the_key_middleware_is_applied_once_and_pruned_when_keys_go_off() -> None:
    cluster = InMemoryControlCluster(
        keys_required(True),
        model_service("chat", app="chat"),
        model_endpoint("a", "http://10.240.1.1", app="chat"),
    )
    settings = Settings(retries=False)
    run(cluster, settings=settings)
    (auth,) = cluster.of_kind("Middleware")
    assert "modelplanekeys" in auth["spec"]["plugin"]
    auth_path = path("Middleware", "ml", auth["metadata"]["name"])
    cluster.writes.clear()
    run(cluster, settings=settings)
    assert cluster.writes == []  # seen as applied: not written again every pass
    cluster.put(keys_required(False))
    run(cluster, settings=settings)
    assert ("annotate", auth_path) in cluster.writes  # the route may still name it in Traefik
    run(cluster, settings=settings, now="2026-12-01T10:01:00Z")
    assert ("delete", auth_path) in cluster.writes
    assert cluster.of_kind("Middleware") == []


class WithoutTraefik(InMemoryControlCluster):
    """A control cluster where Traefik's CRDs are not installed: their lists are 404s."""

    async def get(self, target: str, params: dict[str, str] | None = None) -> Json | None:
        if target.startswith("/apis/traefik.io/"):
            return None
        return await super().get(target, params)


def test_without_retries_or_traefiks_crds_a_pass_still_routes() -> None:
    cluster = WithoutTraefik(*fleet().objects.values())
    run(cluster, settings=Settings(retries=False))
    assert ("apply", path("HTTPRoute", "ml", "chat")) in cluster.writes
    assert not [w for w in cluster.writes if "/traefik.io/" in w[1]]
