"""The fleet ledger in device accounting never promises what the extender cannot place.

Random pools and random sequences of deployments are placed by the fleet scheduler
with the pool in `Device` accounting, in two reconciles (the second sees the first's
replicas as existing, and more deployments); then every placed pod is replayed through the
extender's own inventory, the way the second kube-scheduler would see them: each
replica's pods in turn (largest first), the filter keeping the nodes whose free
devices fit (`inventory.fits`), the node with the best most-allocated `score` chosen
(ties: the first node by name), its devices then taken. Every pod the fleet placed
must find a node. Node accounting, replayed the same way, must find one as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.cel import Attribute, Device, compile_selector
from modelplane.scheduling import schedule_all
from modelplane.scheduling.model import (
    ClassDevice,
    Cluster,
    Deployment,
    DeviceRequest,
    Engine,
    EnginePin,
    Fleet,
    HardwareClass,
    Member,
    PlacedReplica,
    Pool,
    Replica,
)
from scheduler_extender.inventory import DeviceRequest as PodRequest
from scheduler_extender.inventory import Inventory, assignment, score

DRIVER = "gpu.nvidia.com"
ANY_GPU = f'device.driver == "{DRIVER}"'


def hardware(per_node: int) -> HardwareClass:
    device = Device(DRIVER, (("architecture", Attribute("string", "Hopper")),), ())
    return HardwareClass("gpus", (ClassDevice("gpu", "DRA", per_node, device, DRIVER),))


def slices(nodes: int, per_node: int) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {"name": f"node-{n}-gpu"},
            "spec": {
                "driver": DRIVER,
                "nodeName": f"node-{n}",
                "pool": {"name": f"node-{n}"},
                "devices": [{"name": f"gpu-{i}"} for i in range(per_node)],
            },
        }
        for n in range(nodes)
    ]


def engine(count: int, gang: int, copies: int) -> Engine:
    wants = (DeviceRequest("gpu", count, (ANY_GPU,)),)
    if gang == 0:
        return Engine("e", (Member("Standalone", wants),), copies)
    return Engine("e", (Member("Leader", wants), Member("Worker", wants, gang)), copies)


def existing_replica(namespace: str, deployment: str, placed: PlacedReplica) -> Replica:
    """A placed replica as the next reconcile sees it (its pods' shapes recorded)."""
    pins = tuple(EnginePin(e.engine, e.pool, e.node_cost, e.pods) for e in placed.engines)
    return Replica(namespace, deployment, placed.index, placed.cluster, pins, placed.name)


def replay(replicas: Iterable[PlacedReplica], nodes: int, per_node: int) -> list[str]:
    """Place every pod as the extension would, replica by replica; the pods that found
    no node."""
    inventory = Inventory.build(slices(nodes, per_node), [])
    names = [f"node-{n}" for n in range(nodes)]
    stranded = []
    for replica in replicas:
        pods = sorted((dict(p).get(DRIVER, per_node) for e in replica.engines for p in e.pods),
                      reverse=True)  # fmt: skip
        for count in pods:
            wanted = [PodRequest("c", "gpu", (compile_selector(ANY_GPU),), count)]
            feasible = [n for n in names if not isinstance(assignment(inventory, n, wanted), str)]  # fmt: skip
            if not feasible:
                stranded.append(f"{replica.name}: {count} GPUs")
                continue
            best = max(feasible, key=lambda n: (score(inventory, n, wanted), -names.index(n)))
            taken = assignment(inventory, best, wanted)
            assert not isinstance(taken, str)
            inventory = inventory.with_taken(taken)
    return stranded


deployments_st = st.lists(
    st.tuples(
        st.sampled_from([1, 2, 3, 4, 5, 6, 8]),  # GPUs per pod (capped at the node's below)
        st.sampled_from([0, 0, 1, 2]),  # worker pods (0: standalone)
        st.integers(1, 2),  # copies
        st.integers(0, 5),  # replicas
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.sampled_from([2, 4, 8]), deployments_st, st.booleans())
def test_every_pod_the_device_ledger_places_finds_a_node_on_the_extender(
    nodes: int, per_node: int, raw: list[tuple[int, int, int, int]], device: bool
) -> None:
    fleet = Fleet(
        clusters=(
            Cluster("c", (Pool("p", "gpus", nodes),), accounting="Device" if device else "Node"),
        ),
        classes={"gpus": hardware(per_node)},
    )
    deployments = [
        Deployment("ml", f"d{i}", replicas, (engine(min(count, per_node), gang, copies),))
        for i, (count, gang, copies, replicas) in enumerate(raw)
    ]
    first, more = deployments[: len(deployments) // 2 + 1], deployments[len(deployments) // 2 + 1 :]
    placed = schedule_all(first, fleet)
    # A second reconcile: the first one's replicas exist now, more deployments come.
    existing = tuple(existing_replica(p.namespace, p.name, r) for p in placed for r in p.replicas)
    later = schedule_all(first + more, dataclasses.replace(fleet, replicas=existing))
    new = [r for p in later for r in p.replicas if not r.retained]
    assert replay([r for p in placed for r in p.replicas] + new, nodes, per_node) == []
    assert all(not p.removed for p in later)
    total = sum(e.node_cost for p in later for r in p.replicas for e in r.engines)
    if not device:
        assert total <= nodes  # the whole-node rule, unchanged


def test_the_worked_example_replays_without_a_stranded_pod() -> None:
    fleet = Fleet(
        clusters=(Cluster("c", (Pool("p", "gpus", 2),), accounting="Device"),),
        classes={"gpus": hardware(8)},
    )
    small = Deployment("ml", "small", 4, (engine(2, 0, 1),))
    big = Deployment("ml", "big", 1, (engine(8, 0, 1),))
    placements = schedule_all([small, big], fleet)
    assert [len(p.replicas) for p in placements] == [4, 1]
    assert replay([r for p in placements for r in p.replicas], 2, 8) == []
