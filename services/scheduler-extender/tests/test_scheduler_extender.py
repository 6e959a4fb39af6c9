"""modelplane-scheduler-extender without a cluster: free devices per node, exact fit,
most-allocated scores, the kube-scheduler wire format of `filter` and `prioritize`,
and pending reservations that make a burst of small pods pack before their
allocations reach the watch."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduler_extender.extender import CLAIMS, CLASSES, PENDING_TTL_S, SLICES, TEMPLATES, Extender
from scheduler_extender.inventory import Inventory, assignment, fits, requests_of, score

HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
CLASS = {
    "metadata": {"name": "gpu.nvidia.com"},
    "spec": {"selectors": [{"cel": {"expression": 'device.driver == "gpu.nvidia.com"'}}]},
}
CLASS_BY_NAME = {"gpu.nvidia.com": CLASS}


def gpu_slice(node: str, count: int, architecture: str = "Hopper") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{node}-gpu"},
        "spec": {
            "driver": "gpu.nvidia.com",
            "nodeName": node,
            "pool": {"name": node},
            "devices": [
                {"name": f"gpu-{i}", "attributes": {"architecture": {"string": architecture}}}
                for i in range(count)
            ],
        },
    }


def nic_slice(node: str, count: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{node}-nic"},
        "spec": {
            "driver": "nic.example.com",
            "nodeName": node,
            "pool": {"name": node},
            "devices": [{"name": f"nic-{i}"} for i in range(count)],
        },
    }


def claim(name: str, node: str, devices: list[int], pod_uid: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"devices": {"requests": [request("gpu", len(devices))]}},
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {"request": "gpu", "driver": "gpu.nvidia.com", "pool": node,
                         "device": f"gpu-{i}"}
                        for i in devices
                    ]
                }
            },
            "reservedFor": [{"resource": "pods", "name": "p", "uid": pod_uid}],
        },
    }  # fmt: skip


def request(name: str, count: int, *selectors: str, mode: str = "ExactCount") -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": "gpu.nvidia.com", "allocationMode": mode}
    if mode == "ExactCount":
        exactly["count"] = count
    if selectors:
        exactly["selectors"] = [{"cel": {"expression": s}} for s in selectors]
    return {"name": name, "exactly": exactly}


def template(name: str, *requests: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"spec": {"devices": {"requests": list(requests)}}},
    }


def pod(name: str, *templates: str) -> dict[str, Any]:
    """A pod claiming one claim per template (claims named c0, c1, ...), uid `uid-NAME`."""
    return {
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}"},
        "spec": {
            "resourceClaims": [
                {"name": f"c{i}", "resourceClaimTemplateName": t} for i, t in enumerate(templates)
            ]
        },
    }


def wanted(*requests: dict[str, Any]) -> list[Any]:
    found, held = requests_of(pod("p", "t"), {}, {"ml/t": template("t", *requests)}, CLASS_BY_NAME)
    assert held == []
    return found


def test_free_devices_are_the_slices_minus_every_allocated_claim() -> None:
    inventory = Inventory.build(
        [gpu_slice("a", 8), gpu_slice("b", 8)], [claim("x", "a", [0, 1, 2, 3, 4, 5])]
    )
    two = wanted(request("gpu", 2))
    three = wanted(request("gpu", 3))
    assert fits(inventory, "a", two) is None
    assert fits(inventory, "a", three) == "claim c0 request gpu: 2 free matching devices, 3 wanted"
    assert fits(inventory, "b", three) is None
    assert fits(inventory, "nowhere", two) == (
        "claim c0 request gpu: 0 free matching devices, 2 wanted"
    )


def test_selectors_of_the_class_and_the_request_both_apply() -> None:
    inventory = Inventory.build(
        [gpu_slice("hopper", 2), gpu_slice("ada", 4, "Ada Lovelace"), nic_slice("hopper", 4)], []
    )
    hoppers = wanted(request("gpu", 2, HOPPER))
    assert fits(inventory, "hopper", hoppers) is None
    assert fits(inventory, "ada", hoppers) is not None
    assert fits(inventory, "hopper", wanted(request("gpu", 3))) is not None, "NICs are no GPUs"


def test_two_requests_need_distinct_devices_and_a_greedy_order_does_not_refuse_a_fit() -> None:
    """Request `any` could take the only Hopper first; the matching still finds the fit."""
    inventory = Inventory.build([gpu_slice("n", 1), gpu_slice("m", 1, "Ada Lovelace")], [])
    mixed = {
        "metadata": {"name": "mixed"},
        "spec": {
            "driver": "gpu.nvidia.com",
            "nodeName": "mixed",
            "pool": {"name": "mixed"},
            "devices": [
                {"name": "gpu-0", "attributes": {"architecture": {"string": "Hopper"}}},
                {"name": "gpu-1", "attributes": {"architecture": {"string": "Ada Lovelace"}}},
            ],
        },
    }
    inventory = Inventory.build([mixed], [])
    both = wanted(request("any", 1), request("hopper", 1, HOPPER))
    found = assignment(inventory, "mixed", both)
    assert sorted(found) == [
        ("gpu.nvidia.com", "mixed", "gpu-0"),
        ("gpu.nvidia.com", "mixed", "gpu-1"),
    ]
    assert fits(inventory, "mixed", wanted(request("a", 1, HOPPER), request("b", 1, HOPPER)))


def test_allocation_mode_all_needs_every_matching_device_free() -> None:
    inventory = Inventory.build([gpu_slice("a", 4), gpu_slice("b", 4)], [claim("x", "a", [3])])
    everything = wanted(request("gpu", 0, mode="All"))
    assert fits(inventory, "b", everything) is None
    assert fits(inventory, "a", everything) == (
        "claim c0 request gpu: allocationMode All, 3 of 4 matching devices free"
    )


def test_most_allocated_scores_prefer_the_partly_used_node() -> None:
    inventory = Inventory.build(
        [gpu_slice("empty", 8), gpu_slice("half", 8), gpu_slice("full", 8)],
        [claim("x", "half", [0, 1, 2, 3]), claim("y", "full", list(range(8)))],
    )
    two = wanted(request("gpu", 2))
    assert [score(inventory, n, two) for n in ("empty", "half", "full")] == [0, 5, 10]
    assert score(inventory, "empty", []) == 0


def test_an_existing_allocated_claim_is_held_not_requested_again() -> None:
    allocated = claim("mine", "a", [0])
    running = {
        "metadata": {"name": "p", "namespace": "ml"},
        "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimName": "mine"}]},
    }
    found, held = requests_of(running, {"ml/mine": allocated}, {}, CLASS_BY_NAME)
    assert found == [] and held == [("gpu.nvidia.com", "a", "gpu-0")]
    generated = {
        "metadata": {"name": "p", "namespace": "ml"},
        "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "t"}]},
        "status": {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "p-gpu-x"}]},
    }
    pending = {"metadata": {"name": "p-gpu-x", "namespace": "ml"},
               "spec": {"devices": {"requests": [request("gpu", 3)]}}}  # fmt: skip
    found, held = requests_of(generated, {"ml/p-gpu-x": pending}, {}, CLASS_BY_NAME)
    assert [r.count for r in found] == [3] and held == []


@settings(max_examples=200, deadline=None)
@given(
    hopper=st.lists(st.booleans(), min_size=1, max_size=5),
    taken=st.sets(st.integers(0, 4)),
    asks=st.lists(st.tuples(st.integers(1, 2), st.booleans()), min_size=1, max_size=3),
)
def test_fit_agrees_with_trying_every_assignment(
    hopper: list[bool], taken: set[int], asks: list[tuple[int, bool]]
) -> None:
    """Against brute force over every injective choice of free devices for the requests'
    slots, on a node mixing Hopper and Ada GPUs with requests that may want Hopper only."""
    devices = [
        {"name": f"gpu-{i}",
         "attributes": {"architecture": {"string": "Hopper" if h else "Ada Lovelace"}}}
        for i, h in enumerate(hopper)
    ]  # fmt: skip
    node = {"metadata": {"name": "n"},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": "n", "pool": {"name": "n"},
                     "devices": devices}}  # fmt: skip
    held = sorted(i for i in taken if i < len(hopper))
    inventory = Inventory.build([node], [claim("x", "n", held)] if held else [])
    requests = wanted(
        *(request(f"r{i}", c, *([HOPPER] if only else [])) for i, (c, only) in enumerate(asks))
    )
    slots = [only for count, only in asks for _ in range(count)]
    free = [i for i in range(len(hopper)) if i not in held]
    expected = any(
        all(hopper[device] or not only for device, only in zip(choice, slots, strict=True))
        for choice in itertools.permutations(free, len(slots))
    )
    assert (fits(inventory, "n", requests) is None) == expected


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


def test_filter_sees_a_template_and_an_allocation_that_arrive_after_its_first_answer() -> None:
    cache = cache_with()
    extender = Extender(cache)
    nodes = {"Pod": pod("p1", "six"), "NodeNames": ["node-a", "node-b"]}
    assert extender.filter(nodes)["NodeNames"] == ["node-a", "node-b"]  # no such template yet
    cache.change(TEMPLATES, template("six", request("gpu", 6)))
    cache.change(CLAIMS, claim("x", "node-a", [0, 1, 2]))
    answer = extender.filter(nodes)
    assert answer["NodeNames"] == ["node-b"]
    assert answer["FailedNodes"] == {
        "node-a": "modelplane: claim c0 request gpu: 5 free matching devices, 6 wanted"
    }


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
        best = max(s["Score"] for s in scores)
        (top,) = [s["Host"] for s in scores if s["Score"] == best]  # no tie for a random pick
        chosen.append(top)
    assert chosen == ["node-a"] * 4, "every 2-GPU pod scored its way onto the same node"
    last = extender.prioritize({"Pod": pod("p5", "two"), "NodeNames": ["node-a", "node-b"]})
    assert {s["Host"]: s["Score"] for s in last} == {"node-a": 0, "node-b": 1}, (
        "node-a is full once the burst lands: the next pod is steered to the free node"
    )


def test_equally_empty_nodes_are_no_tie_the_reserved_one_scores_higher() -> None:
    extender = Extender(cache_with(claim("x", "node-b", [0, 1, 2, 3])), clock=lambda: 100.0)
    scores = extender.prioritize({"Pod": pod("p1", "two"), "NodeNames": ["node-a", "node-b"]})
    assert {s["Host"]: s["Score"] for s in scores} == {"node-a": 0, "node-b": 5}
    assert extender.pending["uid-p1"].node == "node-b"
    fresh = Extender(cache_with(), clock=lambda: 100.0)
    scores = fresh.prioritize({"Pod": pod("p1", "two"), "NodeNames": ["node-b", "node-a"]})
    assert {s["Host"]: s["Score"] for s in scores} == {"node-a": 1, "node-b": 0}
    assert fresh.pending["uid-p1"].node == "node-a"


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
