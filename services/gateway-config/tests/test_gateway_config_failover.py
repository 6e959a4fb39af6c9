"""Failover and overflow between priorities: the objects rendered, worked out by hand."""

from __future__ import annotations

from typing import Any

from gateway_config.backends import REPLICA_PUBLISHER
from gateway_config.decide import Settings, Snapshot, decide
from gateway_config.failover import Tier, tiers
from gateway_config.limits import endpoint_limits
from gateway_config.render import (
    backend_name,
    hop_name,
    limit_name,
    link_name,
    tier_name,
    tier_retry_name,
)

from tests.gatewayobjects import entry, gateway, model_endpoint, model_service

Json = dict[str, Any]
NOW = "2026-12-03T15:00:00Z"
GATEWAY = gateway("10.9.0.1", namespace=None)
FLEET = model_endpoint("west", "http://10.1.0.5", "fleet", rewrite="/x/")
PROVIDER = model_endpoint("groq", "https://api.groq.example.com", "provider", rewrite="/x/")
REPLICA_LABELS = {"d": "fleet", "app.kubernetes.io/managed-by": REPLICA_PUBLISHER}
TOUR = model_service(entry("fleet"), entry("provider", priority=1))


def applied(service: Json, *endpoints: Json, retries: bool = True) -> list[Json]:
    snapshot = Snapshot(model_services=[service], model_endpoints=endpoints, gateway=GATEWAY)
    return list(decide(snapshot, Settings(retries=retries), NOW).apply)


def one(objects: list[Json], kind: str, name: str) -> Json:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def rule(route: Json) -> Json:
    (only,) = route["spec"]["rules"]
    return dict(only)


def test_tiers_group_entries_by_priority_and_leave_out_those_without_endpoints() -> None:
    found = tiers(
        [
            ({"priority": 2}, ["p"]),
            ({"weight": 3}, ["a", "b"]),
            ({}, ["c"]),
            ({"priority": 1}, []),  # nothing routed: tier 1 without endpoints
        ]
    )
    # tier 0: 3 over {a, b} = 3/2 each, 1 over {c}; x2 -> 3, 3, 2
    assert found == [Tier(0, {"a": 3, "b": 3, "c": 2}), Tier(1, {}), Tier(2, {"p": 1})]


def test_a_fallback_provider_is_chained_behind_the_fleet() -> None:
    objects = applied(TOUR, FLEET, PROVIDER)
    first, last = tier_name("chat", 0), tier_name("chat", 1)

    # the client's route goes to the first failover link only, with no retry of its own
    route = one(objects, "HTTPRoute", "chat")
    assert rule(route)["backendRefs"] == [
        {"group": "traefik.io", "kind": "TraefikService", "name": link_name("chat", 0)}
    ]
    assert "filters" not in rule(route)
    assert route["spec"]["parentRefs"][0]["sectionName"] == "http"

    link = one(objects, "TraefikService", link_name("chat", 0))
    assert link["spec"] == {
        "failover": {
            "service": {
                "kind": "Service",
                "name": first,
                "port": 8001,
                "scheme": "h2c",
                "middlewares": [{"name": first}],
            },
            "fallback": {
                "kind": "Service",
                "name": last,
                "port": 8001,
                "scheme": "h2c",
                "middlewares": [{"name": last}],
            },
            "errors": {"status": ["429", "500", "502-504"], "maxRequestBodyBytes": -1},
        }
    }
    assert one(objects, "Middleware", first)["spec"] == {"addPrefix": {"prefix": "/_tier/0"}}
    assert one(objects, "Middleware", last)["spec"] == {"addPrefix": {"prefix": "/_tier/1"}}

    # each tier's Service is the gateway itself on the hop port, over h2c
    tier_slice = one(objects, "EndpointSlice", first)
    assert tier_slice["endpoints"][0]["addresses"] == ["10.9.0.1"]
    assert tier_slice["ports"][0]["port"] == 8001
    assert tier_slice["ports"][0]["appProtocol"] == "kubernetes.io/h2c"

    # each tier's route is on the hop listener, retries there without 503 and 429, and
    # reaches its endpoint directly (no second hop)
    fleet_route = one(objects, "HTTPRoute", first)
    assert fleet_route["spec"]["parentRefs"][0]["sectionName"] == "hop"
    assert rule(fleet_route)["matches"][0]["path"]["value"] == "/_tier/0/ml/chat/"
    assert [r["name"] for r in rule(fleet_route)["backendRefs"]] == [backend_name("chat", "west")]
    retry_ref = rule(fleet_route)["filters"][0]["extensionRef"]
    assert retry_ref["name"] == tier_retry_name("chat")
    retry = one(objects, "Middleware", tier_retry_name("chat"))["spec"]["retry"]
    assert retry["status"] == ["500", "502", "504"]
    provider_route = one(objects, "HTTPRoute", last)
    assert rule(provider_route)["matches"][0]["path"]["value"] == "/_tier/1/ml/chat/"
    (provider_ref,) = rule(provider_route)["backendRefs"]
    assert (provider_ref["name"], provider_ref["port"]) == (backend_name("chat", "groq"), 443)
    assert provider_ref["filters"][0]["urlRewrite"] == {
        "hostname": "api.groq.example.com",
        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x/"},
    }
    assert not [o for o in objects if o["metadata"]["name"] == hop_name("chat", "groq")]
    # the provider's certificate is still checked by name
    one(objects, "BackendTLSPolicy", backend_name("chat", "groq"))

    # what a request meets is applied after what it is sent to
    order = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert order.index(("HTTPRoute", first)) < order.index(("HTTPRoute", "chat"))
    assert order.index(("TraefikService", link_name("chat", 0))) < order.index(
        ("HTTPRoute", "chat")
    )


def test_three_priorities_chain_two_links() -> None:
    service = model_service(
        entry("fleet"), entry("provider", priority=1), entry("last", priority=5)
    )
    spare = model_endpoint("spare", "https://spare.example.com", "last", rewrite="/x/")
    objects = applied(service, FLEET, PROVIDER, spare)
    head = one(objects, "TraefikService", link_name("chat", 0))["spec"]["failover"]
    assert head["fallback"] == {"kind": "TraefikService", "name": link_name("chat", 1)}
    tail = one(objects, "TraefikService", link_name("chat", 1))["spec"]["failover"]
    assert tail["service"]["name"] == tier_name("chat", 1)
    assert tail["fallback"]["name"] == tier_name("chat", 5)
    assert len([o for o in objects if o["kind"] == "TraefikService"]) == 2


def test_with_the_fleet_gone_its_tier_answers_503_at_once_and_the_chain_stays() -> None:
    objects = applied(TOUR, PROVIDER)
    one(objects, "TraefikService", link_name("chat", 0))
    stand_in = backend_name("chat", None)
    fleet_rule = rule(one(objects, "HTTPRoute", tier_name("chat", 0)))
    assert [r["name"] for r in fleet_rule["backendRefs"]] == [stand_in]
    assert one(objects, "EndpointSlice", stand_in)["endpoints"] == []
    provider_rule = rule(one(objects, "HTTPRoute", tier_name("chat", 1)))
    assert [r["name"] for r in provider_rule["backendRefs"]] == [backend_name("chat", "groq")]


def test_without_retries_the_fallback_is_routed_once_the_fleet_is_gone() -> None:
    objects = applied(TOUR, PROVIDER, retries=False)
    route = one(objects, "HTTPRoute", "chat")
    assert [r["name"] for r in rule(route)["backendRefs"]] == [hop_name("chat", "groq")]


def test_a_fallback_is_not_routed_while_the_fleet_serves_without_retries() -> None:
    # without Traefik's CRD provider there is no failover link: only the first tier is routed
    objects = applied(TOUR, FLEET, PROVIDER, retries=False)
    assert not [o for o in objects if o["kind"] in ("TraefikService", "Middleware")]
    route = one(objects, "HTTPRoute", "chat")
    # (a plain-HTTP endpoint: through its hop)
    assert [r["name"] for r in rule(route)["backendRefs"]] == [hop_name("chat", "west")]
    assert not [o for o in objects if o["metadata"]["name"] == backend_name("chat", "groq")]


def test_an_endpoint_matched_by_two_bounded_entries_gets_the_least_bound() -> None:
    found = endpoint_limits(
        [({"maxInFlight": 8}, ["a", "b"]), ({"maxInFlight": 3}, ["b"]), ({}, ["c"])]
    )
    assert found == {"a": 8, "b": 3}


def test_a_bounded_fleet_refuses_its_excess_with_429_at_the_front_door() -> None:
    replica = {**FLEET, "metadata": {**FLEET["metadata"], "labels": REPLICA_LABELS}}
    service = model_service(entry("fleet", maxInFlight=2), entry("provider", priority=1))
    objects = applied(service, replica, PROVIDER)
    name = limit_name("chat", "west")
    assert one(objects, "Middleware", name)["spec"] == {
        "inFlightReq": {
            "amount": 2,
            "sourceCriterion": {"requestHeaderName": "X-Modelplane-Service"},
        }
    }
    # counted per service whoever the client: the rule names the service in that header
    fleet_rule = rule(one(objects, "HTTPRoute", tier_name("chat", 0)))
    assert fleet_rule["filters"][1] == {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {"set": [{"name": "X-Modelplane-Service", "value": "ml/chat"}]},
    }
    (ref,) = fleet_rule["backendRefs"]
    assert [f["type"] for f in ref["filters"]] == ["URLRewrite", "ExtensionRef"]
    assert ref["filters"][1]["extensionRef"] == {
        "group": "traefik.io",
        "kind": "Middleware",
        "name": name,
    }
    # the provider is not bounded
    provider_rule = rule(one(objects, "HTTPRoute", tier_name("chat", 1)))
    assert len(provider_rule["filters"]) == 1
    assert [f["type"] for f in provider_rule["backendRefs"][0]["filters"]] == ["URLRewrite"]


def test_a_bound_without_a_fallback_is_on_the_service_route() -> None:
    replica = {**FLEET, "metadata": {**FLEET["metadata"], "labels": REPLICA_LABELS}}
    objects = applied(model_service(entry("fleet", maxInFlight=5)), replica)
    route_rule = rule(one(objects, "HTTPRoute", "chat"))
    assert [f["type"] for f in route_rule["filters"]] == ["ExtensionRef", "RequestHeaderModifier"]
    (ref,) = route_rule["backendRefs"]
    assert ref["filters"][-1]["extensionRef"]["name"] == limit_name("chat", "west")
    assert (
        one(objects, "Middleware", limit_name("chat", "west"))["spec"]["inFlightReq"]["amount"] == 5
    )
    # without Traefik's CRD provider there is no Middleware, so no bound
    plain = applied(model_service(entry("fleet", maxInFlight=5)), replica, retries=False)
    assert not [o for o in plain if o["kind"] == "Middleware"]
