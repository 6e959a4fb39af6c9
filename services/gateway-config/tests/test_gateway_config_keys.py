"""API keys at the front door: the table, the verdicts, the rendered Middleware, the server."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from gateway_config import keys
from gateway_config.decide import Settings, Snapshot, decide
from gateway_config.keyserver import REQUESTS, KeyServer, secrets_path
from modelplane.cache import Cache

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


@pytest.mark.parametrize(
    ("headers", "service", "status", "key_id", "result"),
    [
        ({}, "ml/chat", 401, "", "missing"),
        ({"authorization": "Bearer sk-wrong-0123456789abcdef"}, "ml/chat", 401, "", "unknown"),
        ({"authorization": f"Basic {ALICE_KEY}"}, "ml/chat", 401, "", "missing"),
        ({"authorization": f"Bearer {ALICE_KEY}"}, "ml/chat", 200, "alice", "accepted"),
        ({"x-api-key": ALICE_KEY}, "ml/code", 200, "alice", "accepted"),
        ({"x-api-key": ALICE_KEY}, "ml/other", 403, "alice", "forbidden"),
        ({"authorization": f"bearer {BOB_KEY}"}, "team/anything", 200, "bob", "accepted"),
    ],
)
def test_a_request_is_answered_by_its_key_and_the_keys_scope(
    headers: dict[str, str], service: str, status: int, key_id: str, result: str
) -> None:
    verdict = keys.check(TABLE, headers, service)
    assert (verdict.status, verdict.key_id, verdict.result) == (status, key_id, result)


def test_refusals_use_the_openai_error_shape_and_never_echo_the_key() -> None:
    for headers in ({}, {"x-api-key": "sk-wrong-0123456789abcdef"}):
        body = json.loads(keys.check(TABLE, headers, "ml/chat").body("ml/chat"))
        assert body["error"]["code"] == "invalid_api_key"
        assert body["error"]["type"] == "invalid_request_error"
    forbidden = keys.check(TABLE, {"x-api-key": ALICE_KEY}, "ml/other").body("ml/other")
    assert json.loads(forbidden)["error"]["code"] == "permission_denied"
    assert ALICE_KEY.encode() not in forbidden


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


GATEWAY = {
    "kind": "Gateway",
    "metadata": {"name": "modelplane-gateway", "namespace": "modelplane-system"},
    "status": {"addresses": [{"type": "IPAddress", "value": "10.240.0.1"}]},
}
SERVICE = {
    "kind": "ModelService",
    "metadata": {"name": "chat", "namespace": "ml", "uid": "uid-chat", "generation": 1},
    "spec": {"endpoints": [{"selector": {"matchLabels": {"d": "x"}}, "maxInFlight": 4}]},
}
ENDPOINT = {
    "kind": "ModelEndpoint",
    "metadata": {"name": "e1", "namespace": "ml", "uid": "uid-e1", "labels": {"d": "x"}},
    "spec": {"url": "http://10.1.2.3:8000", "rewritePath": "/"},
}


def applied(api_keys: Json | None, uid: str = "u") -> dict[tuple[str, str], Json]:
    spec: Json = {"backend": "Traefik"}
    if api_keys is not None:
        spec["apiKeys"] = api_keys
    gateway = {
        "kind": "InferenceGateway",
        "metadata": {"name": "default", "uid": uid},
        "spec": spec,
    }
    snapshot = Snapshot(
        inference_gateways=[gateway], model_services=[SERVICE], model_endpoints=[ENDPOINT],
        gateway=GATEWAY,
    )  # fmt: skip
    decision = decide(snapshot, Settings(auth_url="http://10.240.0.1:9095"), NOW)
    return {(o["kind"], o["metadata"]["name"]): o for o in decision.apply}


def test_with_keys_required_the_route_asks_the_key_server_before_anything_else() -> None:
    objects = applied({"required": True})
    (auth,) = [o for (kind, name), o in objects.items() if name.startswith("mp-auth-chat-")]
    assert auth["kind"] == "Middleware"
    assert auth["metadata"]["namespace"] == "ml"
    assert auth["metadata"]["ownerReferences"][0]["name"] == "chat"
    assert auth["spec"] == {
        "forwardAuth": {
            "address": "http://10.240.0.1:9095/ml/chat",
            "authRequestHeaders": ["Authorization", "X-Api-Key"],
            "authResponseHeaders": ["X-Modelplane-Key-Id"],
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
    gateway = {"kind": "InferenceGateway", "metadata": {"name": "default", "uid": "u"},
               "spec": {"backend": "Traefik", "apiKeys": {"required": True}}}  # fmt: skip
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


class NoApi:
    """The cache is fed watch events directly here; it never lists."""

    async def get(self, path: str, params: Any = None) -> Json | None:
        raise AssertionError(path)

    def watch(self, path: str, params: Any) -> Any:
        raise AssertionError(path)


def event(server: KeyServer, kind: str, obj: Json) -> None:
    server.cache.informers[server.path].apply({"type": kind, "object": obj})


def test_the_server_answers_forward_auth_and_a_deleted_key_stops_at_once() -> None:
    accepted = REQUESTS.labels("alice", "ml/chat", "accepted")
    before = accepted._value.get()

    async def main() -> None:
        path = secrets_path("modelplane-api-keys")
        server = KeyServer(Cache(NoApi(), [path]), path)
        port = await server.server.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await exchange(server, client)
        finally:
            await server.server.shutdown(1.0)

    asyncio.run(main())
    assert accepted._value.get() == before + 1


async def exchange(server: KeyServer, client: httpx.AsyncClient) -> None:
    assert (await client.get("/ml/chat")).status_code == 401
    event(server, "ADDED", secret("alice", ALICE_KEY, "ml/chat"))
    ok = await client.post("/ml/chat", headers={"Authorization": f"Bearer {ALICE_KEY}"})
    assert ok.status_code == 200
    assert ok.headers[keys.KEY_ID_HEADER] == "alice"
    other = await client.get("/ml/code", headers={"x-api-key": ALICE_KEY})
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/json"
    event(server, "DELETED", secret("alice", ALICE_KEY, "ml/chat"))
    gone = await client.get("/ml/chat", headers={"x-api-key": ALICE_KEY})
    assert gone.status_code == 401
    assert gone.json()["error"]["code"] == "invalid_api_key"
