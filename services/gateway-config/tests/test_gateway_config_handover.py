"""Make-before-break across passes (`gateway_config.handover`), over `decide` and a cluster
that records what each pass writes, with the times the API server would give.

`Cluster.step` runs one pass at a given second and applies its writes as the API server
would: a new object gets `creationTimestamp` of that second, an apply keeps the merge-patched
stamp, a delete removes. `Traefik` plays the part of a Traefik whose providers load the
cluster's changes up to `LAG_S` seconds late: at any moment it may still hold any route
version the cluster had in the last `LAG_S` seconds, and it may not yet have any object
created in the last `LAG_S` seconds. A request meets a 404 or 500 exactly when such a route
names such an object, or one already deleted; the invariant below is that it never does.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from gateway_config import keys
from gateway_config.decide import Decision, Settings, Snapshot, decide
from gateway_config.handover import UNUSED_SINCE, Key, key, needs
from gateway_config.render import (
    backend_name,
    hop_name,
    limit_name,
    link_name,
    tier_name,
    tier_retry_name,
)

from tests.gatewayobjects import (
    entry,
    gateway,
    inference_gateway,
    model_endpoint,
    model_service,
)

Json = dict[str, Any]
START = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.UTC)
SETTINGS = Settings()
LAG_S = 2
"""Traefik's providersThrottleDuration default: how late a provider may apply a change."""
GATEWAY = gateway("10.9.0.1", namespace=None)
KEY_A = "sk-handover-a-0123456789abcdef"
KEY_B = "sk-handover-b-0123456789abcdef"


def at(second: int) -> str:
    return (START + datetime.timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ig(required: bool = False) -> Json:
    return inference_gateway(
        uid="uid-ig", generation=None, api_keys={"required": True} if required else None
    )


def secret(name: str, key_: str) -> Json:
    data = {"key": key_, "services": "ml/chat"}
    return {
        "kind": "Secret",
        "metadata": {"name": name, "namespace": keys.DEFAULT_NAMESPACE,
                     "labels": {keys.LABEL: "true"}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }  # fmt: skip


WEST = model_endpoint("west", "http://10.1.0.5", "fleet", rewrite="/x/")
EAST = model_endpoint("east", "http://10.1.0.6", "fleet", rewrite="/x/")
PROVIDER = model_endpoint("groq", "http://10.2.0.9:8000", "provider", rewrite="/x/")
"""A plain-HTTP provider: reached through the hop (a hop Service and a hop route)."""


@dataclass
class Cluster:
    snapshot: Snapshot
    objects: dict[Key, Json] = field(default_factory=dict)
    history: list[tuple[int, dict[Key, Json]]] = field(default_factory=list)
    """Each pass's second and the objects as they were after it."""
    born: dict[Key, list[int]] = field(default_factory=dict)
    """When each object (by key) was created, each time."""
    gone: dict[Key, int] = field(default_factory=dict)
    """When each object was last deleted."""

    def step(self, second: int, **changes: Any) -> Decision:
        """One pass at `second` with the snapshot's fields in `changes` replaced."""
        self.snapshot = replace(self.snapshot, **changes)
        now = at(second)
        decision = decide(
            replace(self.snapshot, managed=list(self.objects.values())), SETTINGS, now
        )
        for obj in decision.apply:
            k = key(obj)
            old = self.objects.get(k)
            meta = dict(obj["metadata"])
            meta["creationTimestamp"] = now if old is None else old["metadata"]["creationTimestamp"]
            if old is not None and "annotations" in old["metadata"]:
                meta["annotations"] = {**old["metadata"]["annotations"],
                                       **meta.get("annotations", {})}  # fmt: skip
            if old is None:
                self.born.setdefault(k, []).append(second)
            self.objects[k] = {**obj, "metadata": meta}
        for k in decision.delete:
            del self.objects[k]
            self.gone[k] = second
        for k, value in decision.annotate:
            meta = self.objects[k]["metadata"]
            annotations = {**meta.get("annotations", {}), UNUSED_SINCE: value}
            meta["annotations"] = {a: v for a, v in annotations.items() if v is not None}
        self.history.append((second, dict(self.objects)))
        return decision

    def settle(self, start: int, **changes: Any) -> int:
        """Passes every second from `start` until one writes nothing and expects nothing;
        the second after it."""
        second = start
        decision = self.step(second, **changes)
        while decision.apply or decision.delete or decision.annotate or decision.recheck_s:
            second += 1
            decision = self.step(second)
        return second + 1

    def made(self, k: Key, second: int) -> int:
        """When the copy of `k` present at `second` was created."""
        return max(b for b in self.born[k] if b <= second)

    def route(self, name: str = "chat") -> Json:
        return self.objects[("HTTPRoute", "ml", name)]


def services(decision: Decision) -> list[str]:
    """The ModelServices whose status the pass writes."""
    return [p.name for p in decision.status if p.kind == "ModelService"]


def referring(objects: dict[Key, Json]) -> Iterator[Json]:
    return (o for k, o in objects.items() if k[0] in ("HTTPRoute", "TraefikService"))


def closure(obj: Json, objects: dict[Key, Json]) -> set[Key]:
    """What `obj` names, followed through `objects` (a name nowhere in it stays in)."""
    found: set[Key] = set()
    todo = list(needs(obj))
    while todo:
        k = todo.pop()
        if k in found:
            continue
        found.add(k)
        if k in objects:
            todo += needs(objects[k])
    return found


def never_names_what_traefik_lacks(cluster: Cluster) -> None:
    """The invariant: any version of the service's route that Traefik may hold at second t
    (one the cluster had in (t - LAG_S, t]) names, directly or through what it names, only
    objects Traefik has at t: not deleted, and made by t - LAG_S (or with the route itself,
    whose requests had no route at all before)."""
    route_key = ("HTTPRoute", "ml", "chat")
    for t, present in cluster.history:
        for s, objects in cluster.history:
            if not t - LAG_S < s <= t or route_key not in objects:
                continue
            for k in closure(objects[route_key], present):
                if k[0] in ("EndpointSlice", "BackendTLSPolicy", "ConfigMap") and all(
                    k not in o for _, o in cluster.history
                ):
                    continue  # a part this Service never had (no TLS, say)
                where = f"the route at {s}s, seen at {t}s, names {k}"
                assert k in present, f"{where}, which is deleted"
                made = cluster.made(k, t)
                if made > cluster.made(route_key, t):
                    assert t - made >= LAG_S, f"{where}, made at {made}s"


def fleet(*endpoints: Json, model_services: list[Json] | None = None) -> Cluster:
    snapshot = Snapshot(
        inference_gateways=[ig()],
        model_services=model_services or [model_service(entry("fleet"))],
        model_endpoints=list(endpoints),
        gateway=GATEWAY,
    )
    return Cluster(snapshot)


def test_a_new_service_is_routed_in_its_first_pass() -> None:
    cluster = fleet(WEST)
    decision = cluster.step(0)
    assert ("HTTPRoute", "ml", "chat") in {key(o) for o in decision.apply}
    assert services(decision) == ["chat"]


def test_a_new_bound_is_named_by_the_route_only_once_its_middleware_has_settled() -> None:
    cluster = fleet(WEST)
    cluster.settle(0)
    bounded = model_service(entry("fleet", maxInFlight=2))
    decision = cluster.step(10, model_services=[bounded])
    limit = ("Middleware", "ml", limit_name("chat", "west"))
    assert [key(o) for o in decision.apply] == [limit]
    assert services(decision) == []  # the status waits for the route
    assert decision.recheck_s == 4  # 3 s settle in whole seconds
    assert cluster.step(13).apply == ()  # 3 whole seconds may be 2.01 real ones
    decision = cluster.step(14)
    assert [key(o) for o in decision.apply] == [("HTTPRoute", "ml", "chat")]
    assert services(decision) == ["chat"]
    (ref,) = cluster.route()["spec"]["rules"][0]["backendRefs"]
    assert ref["filters"][-1]["extensionRef"]["name"] == limit[2]
    never_names_what_traefik_lacks(cluster)


def test_a_lifted_bound_leaves_the_route_at_once_and_its_middleware_later() -> None:
    cluster = fleet(WEST, model_services=[model_service(entry("fleet", maxInFlight=2))])
    cluster.settle(0)
    limit = ("Middleware", "ml", limit_name("chat", "west"))
    decision = cluster.step(10, model_services=[model_service(entry("fleet"))])
    assert [key(o) for o in decision.apply] == [("HTTPRoute", "ml", "chat")]
    assert decision.annotate == ((limit, at(10)),)
    assert decision.delete == ()
    assert cluster.step(13).delete == ()
    assert cluster.step(14).delete == (limit,)
    never_names_what_traefik_lacks(cluster)


def test_a_bound_changed_in_place_takes_effect_in_one_pass() -> None:
    cluster = fleet(WEST, model_services=[model_service(entry("fleet", maxInFlight=2))])
    cluster.settle(0)
    decision = cluster.step(10, model_services=[model_service(entry("fleet", maxInFlight=5))])
    limit = ("Middleware", "ml", limit_name("chat", "west"))
    assert [(key(o), o["spec"]["inFlightReq"]["amount"]) for o in decision.apply] == [(limit, 5)]


def test_an_added_provider_is_routed_once_its_hop_has_settled_and_a_removed_one_kept_a_while() -> (
    None
):
    cluster = fleet(WEST, model_services=[model_service(entry("fleet"), entry("provider"))])
    cluster.settle(0)
    decision = cluster.step(10, model_endpoints=[WEST, PROVIDER])
    made = {key(o) for o in decision.apply}
    hop_route = ("HTTPRoute", "ml", backend_name("chat", "groq"))
    assert hop_route in made and ("Service", "ml", hop_name("chat", "groq")) in made
    assert ("HTTPRoute", "ml", "chat") not in made
    end = cluster.settle(11)
    refs = cluster.route()["spec"]["rules"][0]["backendRefs"]
    assert [r["name"] for r in refs] == [hop_name("chat", "groq"), hop_name("chat", "west")]
    assert end - 10 <= 6

    decision = cluster.step(end + 10, model_endpoints=[WEST])
    assert ("HTTPRoute", "ml", "chat") in {key(o) for o in decision.apply}
    assert hop_route in dict(decision.annotate)
    cluster.settle(end + 11)
    assert hop_route not in cluster.objects
    never_names_what_traefik_lacks(cluster)


def test_dropping_the_fallback_entry_prunes_the_failover_objects_after_the_route_moves() -> None:
    fallback = model_service(entry("fleet"), entry("provider", priority=1))
    cluster = fleet(WEST, PROVIDER, model_services=[fallback])
    cluster.settle(0)
    link = ("TraefikService", "ml", link_name("chat", 0))
    cluster.settle(10, model_services=[model_service(entry("fleet"))])
    for name in (link, ("HTTPRoute", "ml", tier_name("chat", 1)),
                 ("Middleware", "ml", tier_retry_name("chat"))):  # fmt: skip
        assert name not in cluster.objects and name in cluster.gone
    # the tier route went in the same pass as the link, never after it
    assert cluster.gone[("HTTPRoute", "ml", tier_name("chat", 0))] <= cluster.gone[link]
    never_names_what_traefik_lacks(cluster)


def test_an_object_wanted_again_before_its_deletion_loses_its_stamp_and_stays() -> None:
    cluster = fleet(WEST, model_services=[model_service(entry("fleet", maxInFlight=2))])
    cluster.settle(0)
    limit = ("Middleware", "ml", limit_name("chat", "west"))
    cluster.step(10, model_services=[model_service(entry("fleet"))])
    decision = cluster.step(11, model_services=[model_service(entry("fleet", maxInFlight=2))])
    assert decision.annotate == ((limit, None),)
    cluster.settle(12)
    assert limit in cluster.objects
    never_names_what_traefik_lacks(cluster)


def test_a_fresh_leader_reads_the_handover_from_the_objects_alone() -> None:
    cluster = fleet(WEST, model_services=[model_service(entry("fleet", maxInFlight=2))])
    cluster.settle(0)
    cluster.step(10, model_services=[model_service(entry("fleet"))])
    limit = ("Middleware", "ml", limit_name("chat", "west"))
    # another copy, with nothing in memory, decides from the same objects
    again = decide(replace(cluster.snapshot, managed=list(cluster.objects.values())),
                   SETTINGS, at(14))  # fmt: skip
    assert again.delete == (limit,)


EDITS: list[tuple[str, dict[str, Any]]] = [
    ("a bound", {"model_services": [model_service(entry("fleet", maxInFlight=2),
                                                  entry("provider"))]}),
    ("a bound changed", {"model_services": [model_service(entry("fleet", maxInFlight=3),
                                                          entry("provider"))]}),
    ("a weight", {"model_services": [model_service(entry("fleet", maxInFlight=3),
                                                   entry("provider", weight=5))]}),
    ("a fallback", {"model_services": [model_service(entry("fleet", maxInFlight=3),
                                                     entry("provider", priority=1))]}),
    ("an endpoint added", {"model_endpoints": [WEST, EAST, PROVIDER]}),
    ("keys on", {"inference_gateways": [ig(True)], "api_keys": [secret("a", KEY_A)]}),
    ("a key added", {"api_keys": [secret("a", KEY_A), secret("b", KEY_B)]}),
    ("a key revoked", {"api_keys": [secret("b", KEY_B)]}),
    ("no fallback", {"model_services": [model_service(entry("fleet"), entry("provider"))]}),
    ("an endpoint removed", {"model_endpoints": [WEST, PROVIDER]}),
    ("keys off", {"inference_gateways": [ig(False)]}),
    ("the provider's entry removed", {"model_services": [model_service(entry("fleet"))]}),
]  # fmt: skip


@pytest.mark.parametrize("pause_s", [1, 10])
def test_no_edit_makes_a_route_name_what_traefik_may_lack(pause_s: int) -> None:
    """Every kind of spec edit, each `pause_s` after the last pass wrote something (1: an
    edit arriving in the middle of the last one's handover)."""
    both = model_service(entry("fleet"), entry("provider"))
    cluster = fleet(WEST, PROVIDER, model_services=[both])
    second = cluster.settle(0)
    took = {}
    for name, change in EDITS:
        second += pause_s
        start = second
        second = cluster.settle(second, **change)
        took[name] = second - 1 - start
    never_names_what_traefik_lacks(cluster)
    # nothing is left behind, and no edit waits longer than two settle times in a row
    assert cluster.objects == {key(o): o for o in cluster.objects.values()}
    assert max(took.values()) <= 2 * (SETTINGS.settle_s + 1) + 1, took


def test_the_invariant_catches_a_route_that_names_a_new_middleware_at_once() -> None:
    """The checker itself, on a history where the route named a bound's Middleware in the
    pass that made it (what gateway-config did before the handover)."""
    cluster = fleet(WEST, model_services=[model_service(entry("fleet", maxInFlight=2))])
    cluster.settle(0)
    limit = ("Middleware", "ml", limit_name("chat", "west"))
    last, objects = cluster.history[-1]
    cluster.born[limit].append(last)  # as if made in the pass of the route naming it
    cluster.history.append((last + 1, objects))
    with pytest.raises(AssertionError, match=f"names {re.escape(str(limit))}, made at"):
        never_names_what_traefik_lacks(cluster)
