"""What one gateway-config pass decides from the observed objects (pure, no fakes).

Including how https backends named by host are verified: a BackendTLSPolicy each,
the URL's host as the name to verify (and SNI), the system's CAs or, with
`--backend-ca-configmap`, that bundle alone, copied next to the policy; without
a usable bundle such backends are not routed at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway_config import keys
from gateway_config.decide import Decision, Settings, Snapshot, decide
from gateway_config.render import RELAY_ROUTE, backend_name, hop_name

from tests import gatewayobjects
from tests.gatewayobjects import inference_gateway, model_endpoint, model_service, selecting

NOW = "2026-11-29T03:00:00Z"
LATER = "2026-11-29T03:05:00Z"
SETTINGS = Settings()
MANAGED = {"app.kubernetes.io/managed-by": "modelplane-gateway-config"}


def RETRY_FILTER(name: str) -> Json:  # noqa: N802 (reads as the constant it stands for)
    """The rule filter of ModelService `name`'s retry Middleware, as Traefik's docs spell it."""
    ref = {"group": "traefik.io", "kind": "Middleware", "name": name}
    return {"type": "ExtensionRef", "extensionRef": ref}


Json = dict[str, Any]
HOP_TOKEN = keys.hop_token([{"metadata": {"name": "default", "uid": "uid-default"}}])
SENDS_HOP_TOKEN = {
    "type": "RequestHeaderModifier",
    "requestHeaderModifier": {"set": [{"name": "X-Modelplane-Hop", "value": HOP_TOKEN}]},
}
"""The service route's: the hop routes' token is sent, keys or not (`render.guarded`)."""
DROPS_HOP_TOKEN = {
    "type": "RequestHeaderModifier",
    "requestHeaderModifier": {"remove": ["X-Modelplane-Hop"]},
}


def ig(name: str = "default", generation: int = 1, **status: Any) -> Json:
    return inference_gateway(name=name, generation=generation, api_version=True, status=status)


def ms(name: str, *selectors: dict[str, str], namespace: str = "ml", **status: Any) -> Json:
    entries = [selecting(s) for s in selectors]
    return model_service(
        *entries, name=name, namespace=namespace, generation=2, api_version=True, status=status
    )


def me(name: str, url: str, rewrite: str = "/", namespace: str = "ml", **labels: str) -> Json:
    return model_endpoint(
        name,
        url,
        labels={k.replace("__", "/").replace("_", "."): v for k, v in labels.items()},
        rewrite=rewrite,
        namespace=namespace,
        generation=1,
        api_version=True,
    )


def gateway(*addresses: str, programmed: str = "True") -> Json:
    state = {"type": "Programmed", "status": programmed, "reason": "Invalid", "message": "no"}
    return gatewayobjects.gateway(*addresses, conditions=[state])


def objects(decision: Decision, kind: str) -> dict[str, Json]:
    return {
        f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o
        for o in decision.apply
        if o["kind"] == kind
    }


def status_of(decision: Decision, kind: str, name: str) -> Json:
    found = [p.status for p in decision.status if (p.kind, p.name) == (kind, name)]
    assert len(found) == 1, found
    return found[0]


def condition(status: Json, type_: str) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == type_)
    return found["status"], found["reason"], found["message"]


def owner(name: str, kind: str = "ModelService") -> list[Json]:
    return [
        {
            "apiVersion": "modelplane.ai/v1alpha1",
            "kind": kind,
            "name": name,
            "uid": f"uid-{name}",
            "controller": True,
        }
    ]


def replica(endpoint: Json) -> Json:
    """`endpoint` as endpoint-manager publishes it (an inference cluster's gateway, h2c)."""
    labels = {
        **endpoint["metadata"]["labels"],
        "app.kubernetes.io/managed-by": "modelplane-endpoint-manager",
    }
    return {**endpoint, "metadata": {**endpoint["metadata"], "labels": labels}}


A = replica(me("sim-a", "http://10.240.1.5:8080", "/ml/rep-a/", modelplane_ai__deployment="chat"))
B = replica(
    me("sim-b", "http://10.240.2.9", "/ml/rep-b/", modelplane_ai__deployment="chat", team="x")
)
SAAS = me("together", "https://api.together.xyz/", "/v1/", modelplane_ai__provider="together")


def test_the_default_gateway_gets_a_gateway_class_and_a_gateway_and_waits_for_an_address() -> None:
    decision = decide(Snapshot(inference_gateways=[ig()]), SETTINGS, NOW)
    assert list(decision.apply) == [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": "traefik"},
            "spec": {"controllerName": "traefik.io/gateway-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {
                "name": "modelplane-gateway",
                "namespace": "modelplane-system",
                "labels": MANAGED,
                "ownerReferences": owner("default", "InferenceGateway"),
            },
            "spec": {
                "gatewayClassName": "traefik",
                "listeners": [
                    {"name": "http", "protocol": "HTTP", "port": 80,
                     "allowedRoutes": {"namespaces": {"from": "All"}}},
                    {"name": "hop", "protocol": "HTTP", "port": 8001,
                     "allowedRoutes": {"namespaces": {"from": "All"}}},
                ],
            },
        },
    ]  # fmt: skip
    assert decision.managed == {("Gateway", "modelplane-system", "modelplane-gateway")}
    assert status_of(decision, "InferenceGateway", "default") == {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready", "status": "False", "reason": "AddressPending",
                "message": "InferenceGateway default: Gateway modelplane-system/modelplane-gateway has no address yet (is the controller of GatewayClass traefik running?)",
                "observedGeneration": 1, "lastTransitionTime": NOW,
            }
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "settings", "addresses", "expected"),
    [
        ("port 80 gives the bare host", Settings(), ["10.240.0.1"], "http://10.240.0.1"),
        ("another port is appended", Settings(port=8080), ["10.240.0.1"], "http://10.240.0.1:8080"),
        ("an IPv6 address is bracketed", Settings(), ["fd00::1"], "http://[fd00::1]"),
        ("a host name is used as is", Settings(), ["gw.example.com", "10.0.0.1"], "http://gw.example.com"),
    ],
)  # fmt: skip
def test_the_gateway_address_is_the_first_status_address(
    name: str, settings: Settings, addresses: list[str], expected: str
) -> None:
    snapshot = Snapshot(inference_gateways=[ig()], gateway=gateway(*addresses))
    status = status_of(decide(snapshot, settings, NOW), "InferenceGateway", "default")
    assert status["address"] == expected
    assert condition(status, "Ready") == (
        "True",
        "GatewayReady",
        f"InferenceGateway default: Gateway modelplane-system/modelplane-gateway serves at {expected}",
    )


def test_a_gateway_its_controller_refuses_is_not_ready() -> None:
    snapshot = Snapshot(inference_gateways=[ig()], gateway=gateway("10.0.0.1", programmed="False"))
    status = status_of(decide(snapshot, SETTINGS, NOW), "InferenceGateway", "default")
    assert condition(status, "Ready") == (
        "False",
        "GatewayNotProgrammed",
        "InferenceGateway default: Gateway modelplane-system/modelplane-gateway is not programmed: Invalid: no",
    )


def test_an_inference_gateway_not_named_default_is_refused_and_creates_nothing() -> None:
    decision = decide(Snapshot(inference_gateways=[ig("other")]), SETTINGS, NOW)
    assert decision.apply == ()
    assert decision.managed == frozenset()
    status = status_of(decision, "InferenceGateway", "other")
    assert "address" not in status
    assert condition(status, "Ready") == (
        "False",
        "NotDefault",
        "InferenceGateway other metadata.name: the InferenceGateway is a singleton named default; nothing is created for 'other', use InferenceGateway default instead",
    )


def test_a_service_routes_to_the_union_of_its_selectors_each_endpoint_once_with_its_own_rewrite() -> (
    None
):
    service = ms("chat", {"modelplane.ai/deployment": "chat"}, {"team": "x"})
    snapshot = Snapshot(
        inference_gateways=[ig()],
        gateway=gateway("10.240.0.1"),
        model_services=[service],
        model_endpoints=[B, A, me("other-ns", "http://10.9.9.9", namespace="team-b", team="x")],
    )
    decision = decide(snapshot, SETTINGS, NOW)
    name_a, name_b = backend_name("chat", "sim-a"), backend_name("chat", "sim-b")
    assert objects(decision, "HTTPRoute") == {
        "ml/chat": {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {
                "name": "chat", "namespace": "ml",
                "labels": {**MANAGED, "modelplane.ai/model-service": "chat"},
                "ownerReferences": owner("chat"),
            },
            "spec": {
                "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                "name": "modelplane-gateway", "namespace": "modelplane-system",
                                "sectionName": "http"}],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": "/ml/chat/"}}],
                    "filters": [RETRY_FILTER("chat"), SENDS_HOP_TOKEN],
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": name_a, "port": 8080, "weight": 1,
                         "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                             "type": "ReplacePrefixMatch", "replacePrefixMatch": "/ml/rep-a/"}}}]},
                        # entry 0 matches both (1/2 each), entry 1 sim-b alone (1): 1/2 : 3/2
                        {"group": "", "kind": "Service", "name": name_b, "port": 80, "weight": 3,
                         "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                             "type": "ReplacePrefixMatch", "replacePrefixMatch": "/ml/rep-b/"}}}]},
                    ],
                }],
            },
        }
    }  # fmt: skip
    assert set(objects(decision, "Service")) == {f"ml/{name_a}", f"ml/{name_b}"}
    status = status_of(decision, "ModelService", "chat")
    assert status["address"] == "http://10.240.0.1/ml/chat"
    assert condition(status, "Ready") == (
        "True",
        "Routed",
        "ModelService ml/chat routes to 2 ModelEndpoint(s): sim-a, sim-b",
    )
    assert condition(status, "EndpointsSelected")[:2] == ("True", "AllSelectorsMatch")


def test_a_replica_is_a_headless_selectorless_h2c_service_and_its_endpoint_slice() -> None:
    snapshot = Snapshot(
        model_services=[ms("chat", {"modelplane.ai/deployment": "chat"})], model_endpoints=[A]
    )
    decision = decide(snapshot, SETTINGS, NOW)
    name = backend_name("chat", "sim-a")
    labels = {
        **MANAGED,
        "modelplane.ai/model-service": "chat",
        "modelplane.ai/model-endpoint": "sim-a",
    }
    assert objects(decision, "Service") == {
        f"ml/{name}": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "ml", "labels": labels,
                         "ownerReferences": owner("chat")},
            "spec": {
                "type": "ClusterIP", "clusterIP": "None",
                "ports": [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP",
                           "appProtocol": "kubernetes.io/h2c"}],
            },
        }
    }  # fmt: skip
    assert objects(decision, "EndpointSlice") == {
        f"ml/{name}": {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": name, "namespace": "ml",
                "labels": {**labels, "kubernetes.io/service-name": name,
                           "endpointslice.kubernetes.io/managed-by": "gateway-config.modelplane.ai"},
                "ownerReferences": owner("chat"),
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP",
                       "appProtocol": "kubernetes.io/h2c"}],
            "endpoints": [{"addresses": ["10.240.1.5"], "conditions": {"ready": True}}],
        }
    }  # fmt: skip
    assert objects(decision, "HTTPRoute").keys() == {"ml/chat"}  # no hop for h2c


# -- the h2c hop: every backend that is not h2c, reached through the gateway's `hop` listener --

PARENT: Json = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "modelplane-gateway",
          "namespace": "modelplane-system"}  # fmt: skip


def provider_snapshot(*addresses: str) -> Snapshot:
    return Snapshot(
        inference_gateways=[ig()],
        gateway=gateway(*addresses),
        model_services=[ms("llm", {"role": "llm"})],
        model_endpoints=[me("groq", "http://10.240.200.11:8000", "/openai/", role="llm")],
    )


def test_a_plain_http_provider_is_reached_through_the_h2c_hop_into_the_gateway() -> None:
    decision = decide(provider_snapshot("10.240.0.1"), SETTINGS, NOW)
    direct, via = backend_name("llm", "groq"), hop_name("llm", "groq")
    labels = {
        **MANAGED,
        "modelplane.ai/model-service": "llm",
        "modelplane.ai/model-endpoint": "groq",
    }
    slice_labels = {
        **labels,
        "endpointslice.kubernetes.io/managed-by": "gateway-config.modelplane.ai",
    }
    meta: Json = {"namespace": "ml", "labels": labels, "ownerReferences": owner("llm")}
    assert objects(decision, "Service") == {
        f"ml/{direct}": {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": direct, **meta},
            "spec": {"type": "ClusterIP", "clusterIP": "None",
                     "ports": [{"name": "http", "port": 8000, "targetPort": 8000, "protocol": "TCP",
                                "appProtocol": "http"}]},
        },
        f"ml/{via}": {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": via, **meta, "annotations": {RELAY_ROUTE: direct}},
            "spec": {"type": "ClusterIP", "clusterIP": "None",
                     "ports": [{"name": "http", "port": 8001, "targetPort": 8001, "protocol": "TCP",
                                "appProtocol": "kubernetes.io/h2c"}]},
        },
    }  # fmt: skip
    assert objects(decision, "EndpointSlice") == {
        f"ml/{direct}": {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {**meta, "name": direct,
                         "labels": {**slice_labels, "kubernetes.io/service-name": direct}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8000, "protocol": "TCP", "appProtocol": "http"}],
            "endpoints": [{"addresses": ["10.240.200.11"], "conditions": {"ready": True}}],
        },
        f"ml/{via}": {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {**meta, "name": via,
                         "labels": {**slice_labels, "kubernetes.io/service-name": via}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8001, "protocol": "TCP",
                       "appProtocol": "kubernetes.io/h2c"}],
            "endpoints": [{"addresses": ["10.240.0.1"], "conditions": {"ready": True}}],
        },
    }  # fmt: skip
    assert objects(decision, "HTTPRoute") == {
        "ml/llm": {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "llm", "namespace": "ml",
                         "labels": {**MANAGED, "modelplane.ai/model-service": "llm"},
                         "ownerReferences": owner("llm")},
            "spec": {
                "parentRefs": [{**PARENT, "sectionName": "http"}],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": "/ml/llm/"}}],
                    "filters": [RETRY_FILTER("llm"), SENDS_HOP_TOKEN],
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": via, "port": 8001, "weight": 1,
                         "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                             "type": "ReplacePrefixMatch",
                             "replacePrefixMatch": "/_hop/ml/llm/groq/"}}}]},
                    ],
                }],
            },
        },
        f"ml/{direct}": {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": direct, **meta},
            "spec": {
                "parentRefs": [{**PARENT, "sectionName": "hop"}],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": "/_hop/ml/llm/groq/"}}],
                    "filters": [DROPS_HOP_TOKEN],
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": direct, "port": 8000, "weight": 1,
                         "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                             "type": "ReplacePrefixMatch", "replacePrefixMatch": "/openai/"}}}]},
                    ],
                }],
            },
        },
    }  # fmt: skip
    routes = [o["metadata"]["name"] for o in decision.apply if o["kind"] == "HTTPRoute"]
    assert routes == [direct, "llm"]  # the hop route exists before anything is sent to it


@pytest.mark.parametrize(
    ("name", "addresses", "settings", "address_type", "endpoints", "port"),
    [
        ("no address yet: no endpoint", [], SETTINGS, "IPv4", [], 8001),
        ("an IPv6 address", ["fd00::1"], SETTINGS, "IPv6", [["fd00::1"]], 8001),
        ("a host name", ["gw.example.com"], SETTINGS, "FQDN", [["gw.example.com"]], 8001),
        ("another hop port", ["10.240.0.1"], Settings(hop_port=9000), "IPv4", [["10.240.0.1"]], 9000),
    ],
)  # fmt: skip
def test_the_hop_slice_is_the_gateways_first_status_address_on_the_hop_port(
    name: str,
    addresses: list[str],
    settings: Settings,
    address_type: str,
    endpoints: list[list[str]],
    port: int,
) -> None:
    decision = decide(provider_snapshot(*addresses), settings, NOW)
    slice_ = objects(decision, "EndpointSlice")[f"ml/{hop_name('llm', 'groq')}"]
    assert slice_["addressType"] == address_type
    assert [e["addresses"] for e in slice_["endpoints"]] == endpoints
    assert slice_["ports"][0]["port"] == port
    ref = objects(decision, "HTTPRoute")["ml/llm"]["spec"]["rules"][0]["backendRefs"][0]
    assert ref["port"] == port
    hop_listener = objects(decision, "Gateway")["modelplane-system/modelplane-gateway"]["spec"][
        "listeners"
    ][1]
    assert (hop_listener["name"], hop_listener["port"]) == ("hop", port)


def test_a_named_https_provider_is_an_fqdn_slice_on_443_with_its_host_header_past_the_hop() -> None:
    snapshot = Snapshot(
        gateway=gateway("10.240.0.1"),
        model_services=[ms("kimi", {"modelplane.ai/provider": "together"})],
        model_endpoints=[SAAS],
    )
    decision = decide(snapshot, SETTINGS, NOW)
    name = backend_name("kimi", "together")
    slice_ = objects(decision, "EndpointSlice")[f"ml/{name}"]
    assert (slice_["addressType"], slice_["endpoints"][0]["addresses"], slice_["ports"]) == (
        "FQDN",
        ["api.together.xyz"],
        [{"name": "https", "port": 443, "protocol": "TCP", "appProtocol": "https"}],
    )
    port = objects(decision, "Service")[f"ml/{name}"]["spec"]["ports"][0]
    assert (port["name"], port["port"], port["appProtocol"]) == ("https", 443, "https")
    ref = objects(decision, "HTTPRoute")["ml/kimi"]["spec"]["rules"][0]["backendRefs"][0]
    assert (ref["name"], ref["port"], ref["filters"]) == (
        hop_name("kimi", "together"),
        8001,
        [
            {
                "type": "URLRewrite",
                "urlRewrite": {
                    "path": {
                        "type": "ReplacePrefixMatch",
                        "replacePrefixMatch": "/_hop/ml/kimi/together/",
                    }
                },
            }
        ],
    )
    rule = objects(decision, "HTTPRoute")[f"ml/{name}"]["spec"]["rules"][0]
    assert rule == {
        "matches": [{"path": {"type": "PathPrefix", "value": "/_hop/ml/kimi/together/"}}],
        "backendRefs": [
            {
                "group": "",
                "kind": "Service",
                "name": name,
                "port": 443,
                "weight": 1,
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {
                            "hostname": "api.together.xyz",
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1/"},
                        },
                    }
                ],
            }
        ],
    }
    policy = objects(decision, "BackendTLSPolicy")[f"ml/{name}"]
    assert policy["spec"]["targetRefs"] == [{"group": "", "kind": "Service", "name": name}]


def test_hop_names_are_dns_labels_apart_from_backend_names() -> None:
    for service, endpoint in (("chat", "sim-a"), ("s" * 200, "e" * 200), ("qwen.v2", "rep.1")):
        found = hop_name(service, endpoint)
        assert len(found) <= 63 and found[-1].isalnum()
        assert set(found) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        assert found != backend_name(service, endpoint)
    assert hop_name("a-b", "c") != hop_name("a", "b-c")
    assert hop_name("chat", "sim-a").startswith("mp-hop-chat-sim-a-")


def test_a_service_selecting_nothing_routes_to_an_empty_backend_and_says_which_selector() -> None:
    service = ms("empty", {"modelplane.ai/deployment": "nope"})
    snapshot = Snapshot(
        inference_gateways=[ig()],
        gateway=gateway("10.240.0.1"),
        model_services=[service],
        model_endpoints=[A],
    )
    decision = decide(snapshot, SETTINGS, NOW)
    name = backend_name("empty", None)
    assert objects(decision, "EndpointSlice")[f"ml/{name}"]["endpoints"] == []
    assert objects(decision, "HTTPRoute")["ml/empty"]["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": name, "port": 80, "weight": 1}
    ]
    status = status_of(decision, "ModelService", "empty")
    assert status["address"] == "http://10.240.0.1/ml/empty"
    which = (
        "spec.endpoints[0].selector (modelplane.ai/deployment=nope) matches no ModelEndpoint "
        "in namespace ml"
    )
    assert condition(status, "EndpointsSelected") == (
        "False",
        "SelectorMatchesNothing",
        f"ModelService ml/empty {which}",
    )
    assert condition(status, "Ready") == (
        "False",
        "NoEndpoints",
        f"ModelService ml/empty has no endpoint to route to ({which}); requests get 503 until one appears",
    )


def test_a_malformed_url_is_not_routed_is_named_and_disturbs_nothing_else() -> None:
    bad = me("bad", "ftp://10.1.1.1/", modelplane_ai__deployment="chat")
    snapshot = Snapshot(
        inference_gateways=[ig()],
        gateway=gateway("10.240.0.1"),
        model_services=[ms("chat", {"modelplane.ai/deployment": "chat"})],
        model_endpoints=[A, bad],
    )
    decision = decide(snapshot, SETTINGS, NOW)
    refs = objects(decision, "HTTPRoute")["ml/chat"]["spec"]["rules"][0]["backendRefs"]
    assert [r["name"] for r in refs] == [backend_name("chat", "sim-a")]
    problem = "ModelEndpoint ml/bad spec.url 'ftp://10.1.1.1/': scheme 'ftp' is not http or https"
    assert condition(status_of(decision, "ModelEndpoint", "bad"), "Accepted") == (
        "False",
        "InvalidURL",
        problem,
    )
    assert condition(status_of(decision, "ModelEndpoint", "sim-a"), "Accepted") == (
        "True",
        "ValidURL",
        "ModelEndpoint ml/sim-a: spec.url can be routed",
    )
    assert condition(status_of(decision, "ModelService", "chat"), "Ready") == (
        "True",
        "Routed",
        f"ModelService ml/chat routes to 1 ModelEndpoint(s): sim-a; not routed: {problem}",
    )


def test_without_a_gateway_address_a_service_has_no_address_and_is_not_ready() -> None:
    snapshot = Snapshot(
        model_services=[ms("chat", {"modelplane.ai/deployment": "chat"})], model_endpoints=[A]
    )
    status = status_of(decide(snapshot, SETTINGS, NOW), "ModelService", "chat")
    assert "address" not in status
    assert condition(status, "Ready") == (
        "False",
        "GatewayNotReady",
        "ModelService ml/chat: InferenceGateway default has no address yet",
    )


def test_an_address_that_went_away_is_removed_by_the_patch() -> None:
    before = decide(
        Snapshot(
            inference_gateways=[ig()],
            gateway=gateway("10.240.0.1"),
            model_services=[ms("chat", {"team": "x"})],
            model_endpoints=[B],
        ),
        SETTINGS,
        NOW,
    )
    status = status_of(before, "ModelService", "chat")
    after = decide(
        Snapshot(model_services=[ms("chat", {"team": "x"}, **status)], model_endpoints=[B]),
        SETTINGS,
        LATER,
    )
    patch = status_of(after, "ModelService", "chat")
    assert patch["address"] is None
    assert condition(patch, "Ready")[:2] == ("False", "GatewayNotReady")


def test_a_pass_over_its_own_result_writes_nothing() -> None:
    first = decide(
        Snapshot(
            inference_gateways=[ig()],
            gateway=gateway("10.240.0.1"),
            model_services=[ms("chat", {"modelplane.ai/deployment": "chat"})],
            model_endpoints=[A, B],
        ),
        SETTINGS,
        NOW,
    )
    statuses = {(p.kind, p.name): p.status for p in first.status}
    managed = [
        {k: v for k, v in o.items() if k not in ("apiVersion", "kind")} | {"kind": o["kind"]}
        for o in first.apply
        if o["kind"] != "GatewayClass"
    ]
    again = decide(
        Snapshot(
            inference_gateways=[ig(**statuses[("InferenceGateway", "default")])],
            gateway=gateway("10.240.0.1"),
            gateway_class=next(o for o in first.apply if o["kind"] == "GatewayClass"),
            model_services=[
                ms(
                    "chat",
                    {"modelplane.ai/deployment": "chat"},
                    **statuses[("ModelService", "chat")],
                )
            ],
            model_endpoints=[
                {**e, "status": statuses[("ModelEndpoint", e["metadata"]["name"])]} for e in (A, B)
            ],
            managed=managed,
        ),
        SETTINGS,
        LATER,
    )
    assert (again.apply, again.delete, again.status) == ((), (), ())
    assert again.managed == first.managed


def test_managed_objects_no_longer_wanted_are_deleted_routes_first() -> None:
    stale_name = backend_name("chat", "gone")
    observed = [
        {"kind": "Service", "metadata": {"name": stale_name, "namespace": "ml"}},
        {"kind": "EndpointSlice", "metadata": {"name": stale_name, "namespace": "ml"}},
        {"kind": "HTTPRoute", "metadata": {"name": "old", "namespace": "ml"}},
        {"kind": "Gateway", "metadata": {"name": "modelplane-gateway", "namespace": "modelplane-system"}},
    ]  # fmt: skip
    snapshot = Snapshot(
        model_services=[ms("chat", {"team": "x"})], model_endpoints=[B], managed=observed
    )
    decision = decide(snapshot, SETTINGS, NOW)
    assert decision.delete == (
        ("HTTPRoute", "ml", "old"),
        ("Gateway", "modelplane-system", "modelplane-gateway"),
        ("EndpointSlice", "ml", stale_name),
        ("Service", "ml", stale_name),
    )
    name_b = backend_name("chat", "sim-b")
    assert decision.managed == {
        ("Service", "ml", name_b),
        ("EndpointSlice", "ml", name_b),
        ("HTTPRoute", "ml", "chat"),
        ("Middleware", "ml", "chat"),
    }
    assert [o["kind"] for o in decision.apply] == [
        "Service", "EndpointSlice", "Middleware", "HTTPRoute"
    ]  # fmt: skip


def test_objects_being_deleted_are_left_to_garbage_collection() -> None:
    leaving = ms("chat", {"team": "x"})
    leaving["metadata"]["deletionTimestamp"] = NOW
    going = {**B, "metadata": {**B["metadata"], "deletionTimestamp": NOW}}
    decision = decide(
        Snapshot(model_services=[leaving, ms("keep", {"team": "x"})], model_endpoints=[going]),
        SETTINGS,
        NOW,
    )
    assert set(objects(decision, "HTTPRoute")) == {"ml/keep"}
    assert {(p.kind, p.name) for p in decision.status} == {("ModelService", "keep")}


def test_transition_times_hold_while_a_condition_keeps_its_status() -> None:
    first = decide(Snapshot(model_endpoints=[A]), SETTINGS, NOW)
    status = status_of(first, "ModelEndpoint", "sim-a")
    edited = {**A, "metadata": {**A["metadata"], "generation": 2}, "status": status}
    second = decide(Snapshot(model_endpoints=[edited]), SETTINGS, LATER)
    patch = status_of(second, "ModelEndpoint", "sim-a")
    assert patch["observedGeneration"] == 2
    assert patch["conditions"][0]["lastTransitionTime"] == NOW
    assert patch["conditions"][0]["observedGeneration"] == 2


@pytest.mark.parametrize(
    ("name", "service", "endpoint"),
    [
        ("short names stay readable", "chat", "sim-a"),
        ("long names are shortened", "s" * 200, "e" * 200),
        ("dots become dashes", "qwen.v2", "rep.1"),
        ("no endpoint is the stand-in", "chat", None),
    ],
)  # fmt: skip
def test_backend_names_are_dns_labels_of_at_most_63_characters(
    name: str, service: str, endpoint: str | None
) -> None:
    found = backend_name(service, endpoint)
    assert len(found) <= 63
    assert found[0].isalpha() and found[-1].isalnum()
    assert set(found) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert found == backend_name(service, endpoint)


def test_backend_names_keep_pairs_apart_whose_readable_parts_collide() -> None:
    assert backend_name("a-b", "c") != backend_name("a", "b-c")
    assert backend_name("chat", "sim-a").startswith("mp-chat-sim-a-")


# -- https backends named by host: a BackendTLSPolicy each, the system's CAs or a bundle ----

BUNDLE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CUSTOM = Settings(backend_ca="fleet-ca")
PROVIDER = me("provider", "https://provider.modelplane.test:8443", "/", role="llm")
BY_IP = me("by-ip", "https://10.240.200.10:8443", "/", role="llm")
PLAIN = me("plain", "http://10.240.200.11:8000", "/", role="llm")
TLS_NAME = backend_name("chat", "provider")
TLS_LABELS = {
    **MANAGED,
    "modelplane.ai/model-service": "chat",
    "modelplane.ai/model-endpoint": "provider",
}


def ca_configmap(data: Json | None) -> Json:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": "fleet-ca", "namespace": "modelplane-system"},
        "data": data,
    }


def llm_service(*endpoints: Json, backend_ca: Json | None = None) -> Snapshot:
    return Snapshot(
        inference_gateways=[ig()],
        gateway=gateway("10.240.0.1"),
        model_services=[ms("chat", {"role": "llm"})],
        model_endpoints=list(endpoints),
        backend_ca=backend_ca,
    )


def test_an_https_backend_named_by_host_is_verified_against_that_host_and_the_system_cas() -> None:
    decision = decide(llm_service(PROVIDER, BY_IP, PLAIN), Settings(), NOW)
    assert objects(decision, "BackendTLSPolicy") == {
        f"ml/{TLS_NAME}": {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "BackendTLSPolicy",
            "metadata": {"name": TLS_NAME, "namespace": "ml", "labels": TLS_LABELS,
                         "ownerReferences": owner("chat")},
            "spec": {
                "targetRefs": [{"group": "", "kind": "Service", "name": TLS_NAME}],
                "validation": {"hostname": "provider.modelplane.test",
                               "wellKnownCACertificates": "System"},
            },
        }
    }  # fmt: skip
    assert objects(decision, "ConfigMap") == {}


def test_a_configured_bundle_is_copied_next_to_each_policy_which_trusts_it_alone() -> None:
    decision = decide(
        llm_service(PROVIDER, PLAIN, backend_ca=ca_configmap({"ca.crt": BUNDLE})), CUSTOM, NOW
    )
    policy = objects(decision, "BackendTLSPolicy")[f"ml/{TLS_NAME}"]
    assert policy["spec"]["validation"] == {
        "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": TLS_NAME}],
        "hostname": "provider.modelplane.test",
    }
    assert objects(decision, "ConfigMap") == {
        f"ml/{TLS_NAME}": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": TLS_NAME, "namespace": "ml", "labels": TLS_LABELS,
                         "ownerReferences": owner("chat")},
            "data": {"ca.crt": BUNDLE},
        }
    }  # fmt: skip
    kinds = [o["kind"] for o in decision.apply]
    assert kinds == [
        "GatewayClass", "Gateway", "ConfigMap", *["Service"] * 4, *["EndpointSlice"] * 4,
        "BackendTLSPolicy", "Middleware", *["HTTPRoute"] * 3,
    ]  # fmt: skip
    assert condition(status_of(decision, "ModelService", "chat"), "Ready")[2] == (
        "ModelService ml/chat routes to 2 ModelEndpoint(s): plain, provider"
    )


def test_without_a_usable_bundle_https_backends_named_by_host_are_not_routed() -> None:
    for observed in (None, ca_configmap(None), ca_configmap({"ca.crt": " \n"})):
        decision = decide(llm_service(PROVIDER, PLAIN, backend_ca=observed), CUSTOM, NOW)
        assert objects(decision, "BackendTLSPolicy") == objects(decision, "ConfigMap") == {}
        refs = objects(decision, "HTTPRoute")["ml/chat"]["spec"]["rules"][0]["backendRefs"]
        assert [r["name"] for r in refs] == [hop_name("chat", "plain")]
        hop_routes = set(objects(decision, "HTTPRoute")) - {"ml/chat"}
        assert hop_routes == {f"ml/{backend_name('chat', 'plain')}"}
        assert condition(status_of(decision, "ModelService", "chat"), "Ready") == (
            "True",
            "Routed",
            "ModelService ml/chat routes to 1 ModelEndpoint(s): plain; not routed: "
            "ModelEndpoint ml/provider: the backend CA bundle (ConfigMap "
            "modelplane-system/fleet-ca, key ca.crt) is missing or empty, so the certificate "
            "of this https endpoint cannot be verified",
        )


def test_policies_and_bundles_no_longer_wanted_are_pruned_after_the_route() -> None:
    observed = [
        {"kind": kind, "metadata": {"name": TLS_NAME, "namespace": "ml"}}
        for kind in ("ConfigMap", "BackendTLSPolicy", "HTTPRoute")
    ]
    snapshot = Snapshot(
        model_services=[ms("other", {"role": "llm"})], model_endpoints=[PLAIN], managed=observed
    )
    decision = decide(snapshot, CUSTOM, NOW)
    assert decision.delete == (
        ("HTTPRoute", "ml", TLS_NAME),
        ("BackendTLSPolicy", "ml", TLS_NAME),
        ("ConfigMap", "ml", TLS_NAME),
    )
