"""API keys at the front door: the table, the rendered plugin Middleware, the counts server.

The check itself runs in Traefik (the plugin): `test_gateway_config_key_plugin.py`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import httpx
import pytest
from gateway_config import keys
from gateway_config.decide import Settings, Snapshot, decide
from gateway_config.keyserver import REQUESTS, KeyServer

from tests.gatewayobjects import entry, gateway, inference_gateway, model_endpoint, model_service

Json = dict[str, Any]
NOW = "2026-12-03T19:00:00Z"
ALICE_KEY = "sk-alice-0123456789abcdef"
BOB_KEY = "sk-bob-0123456789abcdef"


def secret(name: str, key: str, services: str) -> Json:
    data = {"key": key, "services": services}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": "modelplane-system",
            "labels": {keys.LABEL: "true"},
            "resourceVersion": "1",
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


TABLE = keys.table([secret("alice", ALICE_KEY, "ml/chat, ml/code"), secret("bob", BOB_KEY, "*")])


def hexdigest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize(
    ("namespace", "service", "allowed", "denied"),
    [
        ("ml", "chat", {"alice", "bob"}, set()),
        ("ml", "code", {"alice", "bob"}, set()),
        ("ml", "other", {"bob"}, {"alice"}),
        ("team", "anything", {"bob"}, {"alice"}),
    ],
)
def test_the_plugin_table_of_a_service_allows_its_keys_and_knows_the_others(
    namespace: str, service: str, allowed: set[str], denied: set[str]
) -> None:
    config = keys.plugin_spec(TABLE, namespace, service, "http://10.0.0.1:9095/", "t0k3n")[
        "plugin"
    ]["modelplanekeys"]
    entries = {"alice": f"{hexdigest(ALICE_KEY)}:alice", "bob": f"{hexdigest(BOB_KEY)}:bob"}
    assert config["allowed"] == sorted(e for i, e in entries.items() if i in allowed)
    assert config["denied"] == sorted(e for i, e in entries.items() if i in denied)
    assert config["service"] == f"{namespace}/{service}"
    assert config["countsURL"] == "http://10.0.0.1:9095/counts"
    assert config["countsToken"] == "t0k3n"
    assert ALICE_KEY not in json.dumps(config) and BOB_KEY not in json.dumps(config)


def test_refusals_use_the_openai_error_shape_and_never_echo_the_key() -> None:
    unauthorized = json.loads(keys.refusal(401, "ml/chat"))["error"]
    assert (unauthorized["code"], unauthorized["type"]) == (
        "invalid_api_key",
        "invalid_request_error",
    )
    forbidden = json.loads(keys.refusal(403, "ml/other"))["error"]
    assert (forbidden["code"], forbidden["type"]) == ("permission_denied", "permission_denied")
    assert "ml/other" in forbidden["message"]
    config = keys.plugin_spec(TABLE, "ml", "other", "http://k", "t")["plugin"]["modelplanekeys"]
    assert (config["unauthorized"], config["forbidden"]) == (
        keys.refusal(401, "ml/other"),
        keys.refusal(403, "ml/other"),
    )


def test_the_table_keeps_digests_only_and_names_bad_secrets_by_field() -> None:
    found = keys.table(
        [
            secret("short", "tiny", "ml/chat"),
            secret("typo", "sk-typo-0123456789abcdef", "ml/chat, not a service"),
            secret("twin", ALICE_KEY, "ml/chat"),
            secret("alice", ALICE_KEY, "ml/chat"),
        ]
    )
    assert ALICE_KEY.encode() not in repr(found).encode()
    assert set(found.grants.values()) == {
        keys.Grant("alice", frozenset({"ml/chat"})),
        keys.Grant("typo", frozenset({"ml/chat"})),
    }
    text = "\n".join(found.problems)
    assert "Secret modelplane-system/short: data.key" in text
    assert "Secret modelplane-system/typo: data.services" in text
    assert "Secret modelplane-system/twin: data.key repeats the key of alice" in text
    assert ALICE_KEY not in text


GATEWAY = gateway("10.240.0.1")
SERVICE = model_service(entry("x", maxInFlight=4))
ENDPOINT = model_endpoint("e1", "http://10.1.2.3:8000", "x", rewrite="/")


def applied(api_keys: Json | None, uid: str = "u") -> dict[tuple[str, str], Json]:
    gateway = inference_gateway(uid=uid, generation=None, api_keys=api_keys)
    snapshot = Snapshot(
        inference_gateways=[gateway], model_services=[SERVICE], model_endpoints=[ENDPOINT],
        gateway=GATEWAY, api_keys=[secret("alice", ALICE_KEY, "ml/chat")],
    )  # fmt: skip
    decision = decide(snapshot, Settings(auth_url="http://10.240.0.1:9095"), NOW)
    return {(o["kind"], o["metadata"]["name"]): o for o in decision.apply}


def test_with_keys_required_the_route_checks_the_key_before_anything_else() -> None:
    objects = applied({"required": True})
    (auth,) = [o for (kind, name), o in objects.items() if name.startswith("mp-auth-chat-")]
    assert auth["kind"] == "Middleware"
    assert auth["metadata"]["namespace"] == "ml"
    assert auth["metadata"]["ownerReferences"][0]["name"] == "chat"
    assert auth["spec"] == {
        "plugin": {
            "modelplanekeys": {
                "service": "ml/chat",
                "allowed": [f"{hexdigest(ALICE_KEY)}:alice"],
                "denied": [],
                "unauthorized": keys.refusal(401, "ml/chat"),
                "forbidden": keys.refusal(403, "ml/chat"),
                "countsURL": "http://10.240.0.1:9095/counts",
                "countsSeconds": 2,
                "countsToken": keys.counts_token([{"metadata": {"name": "default", "uid": "u"}}]),
            }
        }
    }
    filters = objects[("HTTPRoute", "chat")]["spec"]["rules"][0]["filters"]
    assert filters[0] == {
        "type": "ExtensionRef",
        "extensionRef": {
            "group": "traefik.io",
            "kind": "Middleware",
            "name": auth["metadata"]["name"],
        },
    }
    assert filters[1]["extensionRef"]["name"] == "chat"  # the retry comes after
    # the endpoint's bound names the service; the hop token; no backend sees the caller's key
    (modifier,) = filters[2:]
    assert modifier["type"] == "RequestHeaderModifier"
    change = modifier["requestHeaderModifier"]
    assert change["remove"] == ["Authorization", "X-Api-Key"]
    assert [h["name"] for h in change["set"]] == ["X-Modelplane-Service", "X-Modelplane-Hop"]
    assert change["set"][0]["value"] == "ml/chat"


def test_a_revoked_key_rewrites_the_middleware_that_held_it() -> None:
    gateway = inference_gateway(uid="u", generation=None, api_keys={"required": True})
    with_alice = Snapshot(
        inference_gateways=[gateway], model_services=[SERVICE], model_endpoints=[ENDPOINT],
        gateway=GATEWAY, api_keys=[secret("alice", ALICE_KEY, "ml/chat")],
    )  # fmt: skip
    first = decide(with_alice, Settings(), NOW).apply
    (auth,) = [o for o in first if o["metadata"]["name"].startswith("mp-auth-")]
    # the next pass observes what the first applied, and alice's Secret is gone
    revoked = Snapshot(
        inference_gateways=[gateway], model_services=[SERVICE], model_endpoints=[ENDPOINT],
        gateway=GATEWAY, managed=list(first),
    )  # fmt: skip
    (rewritten,) = decide(revoked, Settings(), NOW).apply
    assert rewritten["metadata"]["name"] == auth["metadata"]["name"]
    assert rewritten["spec"]["plugin"]["modelplanekeys"]["allowed"] == []
    # and a pass that changes nothing writes nothing
    unchanged = Snapshot(
        inference_gateways=[gateway], model_services=[SERVICE], model_endpoints=[ENDPOINT],
        gateway=GATEWAY, managed=list(first), api_keys=[secret("alice", ALICE_KEY, "ml/chat")],
    )  # fmt: skip
    assert decide(unchanged, Settings(), NOW).apply == ()


def applied_routes(api_keys: Json | None, uid: str = "u") -> tuple[Json, list[Json]]:
    """The service's own route and its routes on the hop listener."""
    objects = applied(api_keys, uid)
    routes = [o for (kind, _), o in objects.items() if kind == "HTTPRoute"]
    on_hop = [r for r in routes if r["spec"]["parentRefs"][0]["sectionName"] == "hop"]
    return objects[("HTTPRoute", "chat")], on_hop


def test_with_keys_required_the_hop_listener_takes_only_what_the_service_route_sends() -> None:
    route, on_hop = applied_routes({"required": True})
    (sets,) = [f["requestHeaderModifier"]["set"] for f in route["spec"]["rules"][0]["filters"]
               if f["type"] == "RequestHeaderModifier"]  # fmt: skip
    (token,) = [h["value"] for h in sets if h["name"] == "X-Modelplane-Hop"]
    assert len(token) >= 32 and token != "u"  # not the UID itself
    assert len(on_hop) == 1  # the plain-HTTP endpoint is reached through the hop
    rule = on_hop[0]["spec"]["rules"][0]
    (match,) = rule["matches"]
    assert match["headers"] == [{"type": "Exact", "name": "X-Modelplane-Hop", "value": token}]
    assert match["path"]["value"] == "/_hop/ml/chat/e1/"
    (modifier,) = [f["requestHeaderModifier"] for f in rule["filters"]]
    assert modifier == {"remove": ["X-Modelplane-Hop"]}  # the backend never sees it
    # another InferenceGateway (another UID): another token
    other, _ = applied_routes({"required": True}, uid="v")
    assert other["spec"]["rules"][0]["filters"] != route["spec"]["rules"][0]["filters"]


def test_with_keys_required_a_tier_route_on_the_hop_listener_needs_the_token_too() -> None:
    tiered = {**SERVICE, "spec": {"endpoints": [
        {"selector": {"matchLabels": {"d": "x"}}},
        {"selector": {"matchLabels": {"d": "y"}}, "priority": 1},
    ]}}  # fmt: skip
    fallback = {**ENDPOINT, "metadata": {"name": "e2", "namespace": "ml", "uid": "uid-e2",
                                         "labels": {"d": "y"}}}  # fmt: skip
    gateway = inference_gateway(uid="u", generation=None, api_keys={"required": True})
    snapshot = Snapshot(
        inference_gateways=[gateway], model_services=[tiered],
        model_endpoints=[ENDPOINT, fallback], gateway=GATEWAY,
    )  # fmt: skip
    decision = decide(snapshot, Settings(), NOW)
    routes = [o for o in decision.apply if o["kind"] == "HTTPRoute"]
    on_hop = [r for r in routes if r["spec"]["parentRefs"][0]["sectionName"] == "hop"]
    assert {r["spec"]["rules"][0]["matches"][0]["path"]["value"] for r in on_hop} == {
        "/_tier/0/ml/chat/",
        "/_tier/1/ml/chat/",
    }
    for on in on_hop:
        (match,) = on["spec"]["rules"][0]["matches"]
        assert [h["name"] for h in match["headers"]] == ["X-Modelplane-Hop"]


@pytest.mark.parametrize("api_keys", [None, {"required": False}])
def test_without_keys_required_the_hop_routes_match_by_path_alone(api_keys: Json | None) -> None:
    _, on_hop = applied_routes(api_keys)
    assert [list(m) for r in on_hop for m in r["spec"]["rules"][0]["matches"]] == [["path"]]


@pytest.mark.parametrize("api_keys", [None, {}, {"required": False}])
def test_without_keys_required_the_front_door_stays_open(api_keys: Json | None) -> None:
    objects = applied(api_keys)
    assert not [name for _, name in objects if name.startswith("mp-auth-")]
    filters = objects[("HTTPRoute", "chat")]["spec"]["rules"][0]["filters"]
    assert [f["extensionRef"]["name"] for f in filters if f["type"] == "ExtensionRef"] == ["chat"]
    (modifier,) = [f["requestHeaderModifier"] for f in filters if f["type"] != "ExtensionRef"]
    assert "remove" not in modifier


COUNTS_TOKEN = keys.counts_token([{"metadata": {"name": "default", "uid": "uid-ig"}}])


def ask_key_server(
    sent: list[tuple[str, str, Any, dict[str, str]]], token: str = COUNTS_TOKEN
) -> list[tuple[int, str]]:
    """Each (method, path, JSON body, headers) sent to a key server knowing `token`."""
    answers: list[tuple[int, str]] = []

    async def main() -> None:
        server = KeyServer(lambda: token)
        port = await server.server.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for method, target, body, headers in sent:
                    answer = await client.request(method, target, json=body, headers=headers)
                    answers.append((answer.status_code, answer.text))
        finally:
            await server.server.shutdown(1.0)

    asyncio.run(main())
    return answers


ROWS = [
    {"key_id": "alice", "service": "ml/chat", "result": "accepted", "count": 3},
    {"key_id": "", "service": "ml/chat", "result": "missing", "count": 1},
]
SHOWN = {"Authorization": f"Bearer {COUNTS_TOKEN}"}


def test_the_counts_server_adds_the_plugins_reports_and_names_a_bad_field() -> None:
    accepted = REQUESTS.labels("alice", "ml/chat", "accepted")
    missing = REQUESTS.labels("", "ml/chat", "missing")
    before = accepted._value.get(), missing._value.get()
    answers = ask_key_server([
        ("POST", "/counts", ROWS, SHOWN),
        ("POST", "/counts", [{**ROWS[0], "result": "maybe"}], SHOWN),
        ("POST", "/counts", [ROWS[0], {**ROWS[1], "count": 0}], SHOWN),
        ("POST", "/counts", {"rows": ROWS}, SHOWN),
        ("GET", "/counts", None, SHOWN),
        ("POST", "/ml/chat", ROWS, SHOWN),
    ])  # fmt: skip
    assert [status for status, _ in answers] == [204, 400, 400, 400, 405, 404]
    assert "entry 0: result must be one of accepted" in answers[1][1]
    assert "entry 1: count must be a positive integer" in answers[2][1]
    assert "must be a JSON list" in answers[3][1]
    # only the well-formed report counted (a bad one counts nothing, the plugin sends it again)
    assert (accepted._value.get(), missing._value.get()) == (before[0] + 3, before[1] + 1)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer made-up-0123456789abcdef0123"},
        {"Authorization": f"Basic {COUNTS_TOKEN}"},
        {"Authorization": f"Bearer {COUNTS_TOKEN}x"},
        {
            "Authorization": f"Bearer {keys.hop_token([{'metadata': {'name': 'default', 'uid': 'uid-ig'}}])}"
        },
        {"X-Api-Key": COUNTS_TOKEN},
    ],
    ids=["none", "made up", "not bearer", "longer", "the hop token", "another header"],
)
def test_a_report_without_the_counts_token_is_401_and_counts_nothing(
    headers: dict[str, str],
) -> None:
    accepted = REQUESTS.labels("alice", "ml/chat", "accepted")
    before = accepted._value.get()
    ((status, body),) = ask_key_server([("POST", "/counts", ROWS, headers)])
    assert status == 401
    assert "counts token" in json.loads(body)["error"]
    assert accepted._value.get() == before


def test_before_the_inference_gateway_is_known_every_report_is_401() -> None:
    accepted = REQUESTS.labels("alice", "ml/chat", "accepted")
    before = accepted._value.get()
    answers = ask_key_server(
        [("POST", "/counts", ROWS, {}), ("POST", "/counts", ROWS, SHOWN)], token=""
    )
    assert [status for status, _ in answers] == [401, 401]
    assert accepted._value.get() == before


def test_the_counts_token_follows_the_inference_gateway_and_differs_from_the_hop_token() -> None:
    first = [{"metadata": {"name": "default", "uid": "uid-1"}}]
    second = [{"metadata": {"name": "default", "uid": "uid-2"}}]
    assert keys.counts_token(first) != keys.counts_token(second)
    assert keys.counts_token(first) != keys.hop_token(first)
    assert len(keys.counts_token(first)) == 32
    assert keys.counts_token([{"metadata": {"name": "other", "uid": "uid-1"}}]) == ""
