"""A ModelService with `spec.scaleToZero` at zero is routed to the activator (pure, no fakes).

Expected objects are written out by hand from the Gateway API and the hop's design
(`gateway_config.hop`): the activator is reached like a plain-HTTP provider, its
path keeping the service's own prefix, without the retry filter.
"""

from __future__ import annotations

from typing import Any

from gateway_config.activation import check_url
from gateway_config.decide import Decision, Settings, Snapshot, decide
from gateway_config.render import backend_name, hop_name

from tests.gatewayobjects import (
    gateway,
    inference_gateway,
    model_endpoint,
    model_service,
    selecting,
)

Json = dict[str, Any]
NOW = "2026-12-03T21:00:00Z"
GATEWAY = gateway("10.240.0.1")
DEFAULT = inference_gateway()
REPLICA = model_endpoint(
    "sim-a",
    "http://10.240.1.5:8080",
    labels={
        "modelplane.ai/deployment": "chat",
        "app.kubernetes.io/managed-by": "modelplane-endpoint-manager",
    },
    rewrite="/ml/rep-a/",
    generation=1,
)


def ms(name: str, selector: dict[str, str]) -> Json:
    return model_service(selecting(selector), name=name, generation=2)


ACTIVATOR = "http://10.240.0.2:8090"
WITH_ACTIVATOR = Settings(activator_url=ACTIVATOR)


def held(service: Json, **knobs: int) -> Json:
    return {**service, "spec": {**service["spec"], "scaleToZero": dict(knobs)}}


def routes(decision: Decision) -> dict[str, Json]:
    return {o["metadata"]["name"]: o for o in decision.apply if o["kind"] == "HTTPRoute"}


def slices(decision: Decision) -> dict[str, Json]:
    return {o["metadata"]["name"]: o for o in decision.apply if o["kind"] == "EndpointSlice"}


def pass_over(*services: Json, endpoints: tuple[Json, ...] = (), settings: Settings) -> Decision:
    snapshot = Snapshot(
        inference_gateways=[DEFAULT],
        model_services=list(services),
        model_endpoints=list(endpoints),
        gateway=GATEWAY,
    )
    return decide(snapshot, settings, NOW)


def test_a_holding_service_without_endpoints_routes_through_the_hop_to_the_activator() -> None:
    decision = pass_over(held(ms("qwen", {"app": "qwen"})), settings=WITH_ACTIVATOR)
    backend = backend_name("qwen", "modelplane-activator")
    via = hop_name("qwen", "modelplane-activator")
    route = routes(decision)["qwen"]["spec"]["rules"][0]
    # no retry: a 503 past the hold time goes to the client
    assert [f for f in route.get("filters", []) if f["type"] == "ExtensionRef"] == []
    assert route["backendRefs"] == [
        {
            "group": "", "kind": "Service", "name": via, "port": 8001, "weight": 1,
            "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                "type": "ReplacePrefixMatch",
                "replacePrefixMatch": "/_hop/ml/qwen/modelplane-activator/"}}}],
        }
    ]  # fmt: skip
    hop_rule = routes(decision)[backend]["spec"]["rules"][0]
    assert hop_rule["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/_hop/ml/qwen/modelplane-activator/"}}
    ]
    assert hop_rule["backendRefs"][0]["name"] == backend
    assert hop_rule["backendRefs"][0]["filters"] == [
        {"type": "URLRewrite", "urlRewrite": {"path": {
            "type": "ReplacePrefixMatch", "replacePrefixMatch": "/ml/qwen/"}}}
    ]  # fmt: skip
    found = slices(decision)
    assert found[backend]["endpoints"] == [
        {"addresses": ["10.240.0.2"], "conditions": {"ready": True}}
    ]
    assert found[backend]["ports"][0]["port"] == 8090
    assert found[via]["endpoints"][0]["addresses"] == ["10.240.0.1"]
    assert not [o for o in decision.apply if o["kind"] == "Middleware"]


def test_once_an_endpoint_is_routed_the_route_goes_straight_to_it_again() -> None:
    decision = pass_over(
        held(ms("qwen", {"modelplane.ai/deployment": "chat"})),
        endpoints=(REPLICA,),
        settings=WITH_ACTIVATOR,
    )
    refs = routes(decision)["qwen"]["spec"]["rules"][0]["backendRefs"]
    assert [r["name"] for r in refs] == [backend_name("qwen", "sim-a")]
    assert backend_name("qwen", "modelplane-activator") not in slices(decision)


def test_without_scale_to_zero_or_without_the_flag_a_service_at_zero_keeps_the_503_stand_in() -> (
    None
):
    empty = [{"group": "", "kind": "Service", "name": backend_name("qwen", None), "port": 80,
              "weight": 1}]  # fmt: skip
    for service, settings in (
        (ms("qwen", {"app": "qwen"}), WITH_ACTIVATOR),
        (held(ms("qwen", {"app": "qwen"}), holdTimeoutSeconds=3), Settings()),
    ):
        decision = pass_over(service, settings=settings)
        assert routes(decision)["qwen"]["spec"]["rules"][0]["backendRefs"] == empty


def test_the_service_at_zero_still_says_it_has_no_endpoints() -> None:
    decision = pass_over(held(ms("qwen", {"app": "qwen"})), settings=WITH_ACTIVATOR)
    ready = next(
        c for p in decision.status if p.name == "qwen" for c in p.status["conditions"]
        if c["type"] == "Ready"
    )  # fmt: skip
    assert (ready["status"], ready["reason"]) == ("False", "NoEndpoints")


def test_an_activator_url_that_cannot_be_a_backend_is_refused_with_the_reason() -> None:
    assert check_url(ACTIVATOR) is None
    assert check_url("http://activator.modelplane-system.svc:8090") is None
    assert check_url("http://127.0.0.1:8090") == (
        "host 127.0.0.1 is a loopback address, which an EndpointSlice cannot hold"
    )
    assert check_url("activator:8090") == "scheme 'activator' is not http or https"
