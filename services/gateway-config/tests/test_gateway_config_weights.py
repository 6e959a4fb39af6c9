"""Weighted splits: entry weights -> backendRef weights, with expectations worked out by hand."""

from __future__ import annotations

import functools
from typing import Any

from gateway_config.decide import Settings, Snapshot, decide
from gateway_config.render import hop_name
from gateway_config.weights import MAX_WEIGHT, endpoint_weights

from tests.gatewayobjects import entry, model_endpoint, model_service

Json = dict[str, Any]
NOW = "2026-12-03T15:00:00Z"
HOPPED = functools.partial(hop_name, "chat")
"""The Service the route names for an https endpoint of ModelService chat (through the hop)."""


def test_one_entry_of_default_weight_spreads_evenly() -> None:
    assert endpoint_weights([(1, ["a", "b", "c"])]) == {"a": 1, "b": 1, "c": 1}


def test_a_canary_at_1_against_19_over_two_endpoints_is_exact() -> None:
    # stable: 19 / 2 each = 9.5; canary 1: x2 -> 19, 19, 2 (canary 2 / 40 = 5%)
    assert endpoint_weights([(19, ["s1", "s2"]), (1, ["canary"])]) == {
        "s1": 19,
        "s2": 19,
        "canary": 2,
    }


def test_entry_shares_split_over_unequal_counts_stay_exact() -> None:
    # 3 over {a, b}: 3/2 each; 2 over {c, d, e}: 2/3 each; x6 -> 9, 9, 4, 4, 4 (sum 30: 18 and 12)
    weights = endpoint_weights([(3, ["a", "b"]), (2, ["c", "d", "e"])])
    assert weights == {"a": 9, "b": 9, "c": 4, "d": 4, "e": 4}


def test_an_endpoint_in_two_entries_gets_both_shares() -> None:
    # entry 0: a, b at 1/2 each; entry 1: b at 1 -> a 1/2, b 3/2 -> 1 : 3
    assert endpoint_weights([(1, ["a", "b"]), (1, ["b"])]) == {"a": 1, "b": 3}


def test_an_entry_without_endpoints_gets_nothing_and_the_ratio_of_the_rest_holds() -> None:
    assert endpoint_weights([(19, []), (1, ["canary"]), (4, ["x"])]) == {"canary": 1, "x": 4}
    assert endpoint_weights([(5, [])]) == {}


def test_weights_too_large_for_the_gateway_api_are_scaled_and_rounded() -> None:
    # 1000 over {a}, 1000 over 983 names, 1 over 991 names (both primes): exact weights need
    # the multiple 983 * 991, a = 974,153,000 > MAX_WEIGHT, so they are scaled to it
    many = [f"m{i}" for i in range(983)]
    more = [f"n{i}" for i in range(991)]
    weights = endpoint_weights([(1000, ["a"]), (1000, many), (1, more)])
    assert weights["a"] == MAX_WEIGHT
    # a : m0 = 1000 : 1000/983, so m0 = MAX_WEIGHT / 983 = 1017.29 -> 1017
    assert weights["m0"] == 1017
    # n0 = MAX_WEIGHT / 1000 / 991 = 1.009 -> 1 (never 0: the endpoint still gets its share)
    assert weights["n0"] == 1


def route_weights(service: Json, *endpoints: Json) -> dict[str, int]:
    decision = decide(
        Snapshot(model_services=[service], model_endpoints=endpoints), Settings(), NOW
    )
    (route,) = [
        o for o in decision.apply if o["kind"] == "HTTPRoute" and o["metadata"]["name"] == "chat"
    ]
    return {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}  # fmt: skip


def test_the_route_carries_the_weights_and_a_bad_url_does_not_count_as_an_endpoint() -> None:
    service = model_service(entry("stable", weight=19), entry("canary"))
    weights = route_weights(
        service,
        model_endpoint("s1", "https://one.example.com", "stable"),
        model_endpoint("s2", "https://two.example.com", "stable"),
        model_endpoint("broken", "ftp://x.example.com", "stable"),  # not routed: not counted
        model_endpoint("c", "https://canary.example.com", "canary"),  # default weight 1
    )
    assert weights == {HOPPED("s1"): 19, HOPPED("s2"): 19, HOPPED("c"): 2}


def test_a_canary_entry_whose_endpoints_are_gone_leaves_the_rest_at_weight_1() -> None:
    service = model_service(entry("stable", weight=19), entry("canary", weight=1))
    weights = route_weights(service, model_endpoint("s1", "https://one.example.com", "stable"))
    assert weights == {HOPPED("s1"): 1}
