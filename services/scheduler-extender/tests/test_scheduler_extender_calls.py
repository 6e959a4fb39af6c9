"""`filter` and `prioritize` in kube-scheduler's wire format, and pending reservations
that make a burst of small pods pack before their allocations reach the watch."""

from __future__ import annotations

from typing import Any

from scheduler_extender.extender import CLAIMS, CLASSES, PENDING_TTL_S, SLICES, TEMPLATES, Extender
from scheduler_extender_testdata import CLASS, claim, gpu_slice, pod, request, template


class FakeWatchCache:
    """A stand-in for `modelplane.cache.Cache`: fixed collections, changes told by hand."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.listeners: list[Any] = []
        self.synced = True

    def items(self, path: str) -> list[dict[str, Any]]:
        return self.objects.get(path, [])

    def change(self, path: str, obj: dict[str, Any]) -> None:
        self.objects.setdefault(path, []).append(obj)
        for listener in self.listeners:
            listener(path, obj)


def cache_with(*claims: dict[str, Any]) -> FakeWatchCache:
    return FakeWatchCache(
        {
            SLICES: [gpu_slice("node-a", 8), gpu_slice("node-b", 8)],
            CLAIMS: list(claims),
            TEMPLATES: [template("two", request("gpu", 2)), template("eight", request("gpu", 8))],
            CLASSES: [CLASS],
        }
    )


def test_filter_answers_node_names_and_says_why_a_node_failed() -> None:
    extender = Extender(cache_with(claim("x", "node-a", [0, 1])))
    answer = extender.filter({"Pod": pod("p1", "eight"), "NodeNames": ["node-a", "node-b"]})
    assert answer["NodeNames"] == ["node-b"]
    assert answer["FailedNodes"] == {
        "node-a": "modelplane: claim c0 request gpu: 6 free matching devices, 8 wanted"
    }
    assert answer["Error"] == ""


def test_filter_without_node_cache_returns_the_node_objects_that_pass() -> None:
    extender = Extender(cache_with(claim("x", "node-a", [0])))
    nodes = {"items": [{"metadata": {"name": "node-a"}}, {"metadata": {"name": "node-b"}}]}
    answer = extender.filter({"Pod": pod("p1", "eight"), "Nodes": nodes})
    assert answer["Nodes"] == {"items": [{"metadata": {"name": "node-b"}}]}


def test_a_burst_of_small_pods_packs_onto_one_node_before_any_allocation_is_seen() -> None:
    extender = Extender(cache_with(), clock=lambda: 100.0)
    chosen = []
    for name in ("p1", "p2", "p3", "p4"):
        scores = extender.prioritize({"Pod": pod(name, "two"), "NodeNames": ["node-b", "node-a"]})
        chosen.append(max(scores, key=lambda s: (s["Score"], s["Host"] == "node-a"))["Host"])
    assert chosen == ["node-a"] * 4, "every 2-GPU pod scored its way onto the first node"
    last = extender.prioritize({"Pod": pod("p5", "two"), "NodeNames": ["node-a", "node-b"]})
    assert {s["Host"]: s["Score"] for s in last} == {"node-a": 10, "node-b": 0}


def test_a_pending_reservation_ends_with_the_allocation_or_its_ttl() -> None:
    now = [100.0]
    cache = cache_with()
    extender = Extender(cache, clock=lambda: now[0])
    extender.prioritize({"Pod": pod("p1", "two"), "NodeNames": ["node-a", "node-b"]})
    extender.prioritize({"Pod": pod("p2", "two"), "NodeNames": ["node-a", "node-b"]})
    assert set(extender.pending) == {"uid-p1", "uid-p2"}
    cache.change(CLAIMS, claim("p1-gpu", "node-a", [0, 1], pod_uid="uid-p1"))
    assert set(extender.pending) == {"uid-p2"}, "the allocation replaced p1's guess"
    now[0] += PENDING_TTL_S + 1
    scores = extender.prioritize({"Pod": pod("p3", "two"), "NodeNames": ["node-a", "node-b"]})
    assert "uid-p2" not in extender.pending
    assert {s["Host"]: s["Score"] for s in scores} == {"node-a": 3, "node-b": 0}


def test_filter_ignores_pending_guesses_so_a_wrong_guess_keeps_no_pod_off_a_node() -> None:
    extender = Extender(cache_with(), clock=lambda: 100.0)
    for name in ("p1", "p2", "p3", "p4"):
        extender.prioritize({"Pod": pod(name, "two"), "NodeNames": ["node-a"]})
    answer = extender.filter({"Pod": pod("big", "eight"), "NodeNames": ["node-a", "node-b"]})
    assert answer["NodeNames"] == ["node-a", "node-b"]


def test_a_pod_without_claims_passes_everywhere_with_score_zero() -> None:
    extender = Extender(cache_with())
    plain = {"metadata": {"name": "web", "namespace": "ml", "uid": "w"}, "spec": {}}
    assert extender.filter({"Pod": plain, "NodeNames": ["node-a"]})["NodeNames"] == ["node-a"]
    assert extender.prioritize({"Pod": plain, "NodeNames": ["node-a"]}) == [
        {"Host": "node-a", "Score": 0}
    ]
