"""The extender's pure core: free devices per node, exact fit, most-allocated scores."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scheduler_extender.inventory import Inventory, assignment, fits, requests_of, score
from scheduler_extender_testdata import (
    CLASSES,
    HOPPER,
    claim,
    gpu_slice,
    nic_slice,
    pod,
    request,
    template,
)


def wanted(*requests: dict[str, Any]) -> list[Any]:
    found, held = requests_of(pod("p", "t"), {}, {"ml/t": template("t", *requests)}, CLASSES)
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
    found, held = requests_of(running, {"ml/mine": allocated}, {}, CLASSES)
    assert found == [] and held == [("gpu.nvidia.com", "a", "gpu-0")]
    generated = {
        "metadata": {"name": "p", "namespace": "ml"},
        "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "t"}]},
        "status": {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "p-gpu-x"}]},
    }
    pending = {"metadata": {"name": "p-gpu-x", "namespace": "ml"},
               "spec": {"devices": {"requests": [request("gpu", 3)]}}}  # fmt: skip
    found, held = requests_of(generated, {"ml/p-gpu-x": pending}, {}, CLASSES)
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
