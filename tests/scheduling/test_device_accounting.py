"""Device accounting: a pool whose cluster runs the scheduler extension is counted in
devices per node, packed; a pool without it keeps the whole-node rule.

The expectations come from the issue's worked example (two nodes of eight GPUs: four
two-GPU replicas and one eight-GPU replica all fit with device accounting, two with
the whole-node rule) and from the rule that where every pod takes a whole node the two
modes agree exactly, checked on every case of the rules table.
"""

from __future__ import annotations

import dataclasses

import pytest
from modelplane.scheduling import schedule_all
from modelplane.scheduling.model import Accounting, Cluster, Deployment, Fleet, Placement
from modelplane.scheduling.packing import Nodes, dominated, node_devices

from tests.scheduling.builders import (
    as_existing,
    cluster,
    deployment,
    engine,
    fleet,
    gpu,
    hw,
    member,
    pool,
    request,
    summary,
)
from tests.scheduling.test_rules import CASES, Case

EIGHT = hw("h100x8", gpu("80Gi", count=8, architecture="Hopper"))


def gpus(name: str, count: int, replicas: int) -> Deployment:
    return deployment(
        name, engine("e", member("Standalone", request("gpu", count))), replicas=replicas
    )


def in_mode(f: Fleet, mode: Accounting) -> Fleet:
    clusters = tuple(dataclasses.replace(c, accounting=mode) for c in f.clusters)
    return dataclasses.replace(f, clusters=clusters)


def two_nodes(mode: Accounting) -> Fleet:
    return in_mode(fleet([cluster("c", pool("p", "h100x8", 2))], [EIGHT]), mode)


def test_four_two_gpu_replicas_and_one_eight_gpu_replica_fit_two_nodes_in_device_mode() -> None:
    small, big = gpus("small", 2, 4), gpus("big", 8, 1)
    placements = schedule_all([small, big], two_nodes("Device"))
    assert [len(p.replicas) for p in placements] == [4, 1]
    assert [p.unscheduled for p in placements] == [0, 0]


def test_the_whole_node_rule_places_two_of_them_and_says_so() -> None:
    small, big = gpus("small", 2, 4), gpus("big", 8, 1)
    placements = schedule_all([small, big], two_nodes("Node"))
    assert [len(p.replicas) for p in placements] == [2, 0]
    assert placements[1].reasons == ("c: pool p has 0 of 1 needed nodes free",)


def test_a_misfit_in_device_mode_says_how_many_devices_the_best_node_had_free() -> None:
    # 3 + 3 + 3 GPUs leave the nodes with 2 and 5 free: a 6-GPU pod fits neither.
    first, second = gpus("threes", 3, 3), gpus("six", 6, 1)
    placements = schedule_all([first, second], two_nodes("Device"))
    assert len(placements[0].replicas) == 3
    assert placements[1].reasons == (
        "c: pool p (device accounting): a pod claiming 6 gpu.nvidia.com fits no node; "
        "the best node has 5 of 8 devices free",
    )


def test_existing_replicas_recorded_without_pod_shapes_count_as_whole_nodes() -> None:
    placed = schedule_all([gpus("small", 2, 1)], two_nodes("Device"))[0]
    existing = [dataclasses.replace(r, engines=tuple(
        dataclasses.replace(pin, pods=()) for pin in r.engines)) for r in as_existing(placed)]  # fmt: skip
    again = dataclasses.replace(two_nodes("Device"), replicas=tuple(existing))
    big = schedule_all([gpus("small", 2, 1), gpus("big", 8, 2)], again)
    assert len(big[1].replicas) == 1  # the unknown replica holds a node of its own


def test_a_gang_in_device_mode_puts_each_pod_on_a_node_that_has_room() -> None:
    gang = deployment(
        "gang",
        engine(
            "e",
            member("Leader", request("gpu", 4)),
            member("Worker", request("gpu", 4), nodes=3),
        ),
        replicas=2,
    )
    # One replica is four 4-GPU pods: two per node fill the pool; by whole nodes it needs 4.
    device = schedule_all([gang], two_nodes("Device"))[0]
    assert (len(device.replicas), device.unscheduled) == (1, 1)
    node = schedule_all([gang], two_nodes("Node"))[0]
    assert (len(node.replicas), node.unscheduled) == (0, 2)


def test_packing_puts_a_pod_on_the_fullest_node_that_fits_and_gives_back_exactly() -> None:
    nodes = Nodes(3, {"gpu": 8})
    first = nodes.pack([(("gpu", 2),)])
    assert first == [(0, (("gpu", 2),))]
    assert nodes.pack([(("gpu", 4),)]) == [(0, (("gpu", 4),))]  # node 0 is fuller
    whole = nodes.pack([()])
    assert whole == [(1, ())]
    assert nodes.pack([(("gpu", 8),), (("gpu", 8),)]) is None  # only node 2 is free
    assert nodes.free == [[2], [0], [8]]  # all or nothing
    nodes.give(whole)
    assert nodes.free[1] == [8]


def test_a_smaller_demand_is_dominated_and_a_whole_node_holds_anything() -> None:
    assert dominated(((("gpu", 2),),), ((("gpu", 4),),))
    assert not dominated(((("gpu", 4),),), ((("gpu", 2),),))
    assert dominated(((("gpu", 8),),), ((),))
    assert not dominated(((), ()), ((),))


def _takes_whole_nodes(placements: tuple[Placement, ...], f: Fleet) -> bool:
    pools = {(c.name, p.name): p.class_name for c in f.clusters for p in c.pools}
    for placement in placements:
        for replica in placement.replicas:
            for placed in replica.engines:
                whole = tuple(sorted(node_devices(f.classes[pools[(replica.cluster, placed.pool)]]).items()))  # fmt: skip
                if any(pod != whole for pod in placed.pods):
                    return False
    return True


def _outcome(placements: tuple[Placement, ...]) -> list[object]:
    return [
        (summary(p), p.unscheduled, [(r.replica.index, r.replica.cluster) for r in p.removed])
        for p in placements
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_where_every_pod_takes_a_whole_node_device_and_node_mode_agree(case: Case) -> None:
    node = schedule_all(case.deployments, case.fleet)
    device = schedule_all(case.deployments, in_mode(case.fleet, "Device"))
    if _takes_whole_nodes(node, case.fleet) and _takes_whole_nodes(device, case.fleet):
        assert _outcome(device) == _outcome(node)
    else:
        assert sum(len(p.replicas) for p in device) >= sum(len(p.replicas) for p in node)


def test_most_of_the_rules_table_takes_whole_nodes() -> None:
    """So the agreement above is checked on many cases, not vacuously."""
    whole = [c for c in CASES if _takes_whole_nodes(schedule_all(c.deployments, c.fleet), c.fleet)]
    assert len(whole) >= len(CASES) // 2


def test_the_snapshot_reads_the_mode_from_the_cluster_status() -> None:
    from modelplane.scheduling.snapshot import cluster as from_object

    obj = {
        "metadata": {"name": "c"},
        "spec": {"nodePools": [{"name": "p", "className": "h100x8", "nodeCount": 2}]},
        "status": {"schedulerExtension": {"health": "Healthy", "accounting": "Device"}},
    }
    assert from_object(obj, offline=True).accounting == "Device"
    obj["status"]["schedulerExtension"] = {"health": "Unhealthy", "accounting": "Node"}  # type: ignore[index]
    assert from_object(obj, offline=True).accounting == "Node"
    del obj["status"]
    assert isinstance(from_object(obj, offline=True), Cluster)
    assert from_object(obj, offline=True).accounting == "Node"


def test_a_cluster_back_in_node_accounting_keeps_every_replica_and_takes_no_new_one() -> None:
    """The extension stopped: what device accounting placed stays (nothing is evicted), and
    the pool, overcommitted by the whole-node rule, takes nothing more until it is not."""
    small, big = gpus("small", 2, 4), gpus("big", 8, 1)
    placed = schedule_all([small, big], two_nodes("Device"))
    existing = [r for p in placed for r in as_existing(p)]
    node = dataclasses.replace(two_nodes("Node"), replicas=tuple(existing))
    more = gpus("more", 1, 1)
    again = schedule_all([small, big, more], node)
    assert [len(p.replicas) for p in again] == [4, 1, 0]
    assert [p.removed for p in again] == [(), (), ()]
    assert all(r.retained for p in again[:2] for r in p.replicas)
    assert again[2].reasons == ("c: pool p has 0 of 1 needed nodes free",)


def test_feeding_a_device_placement_back_changes_nothing() -> None:
    wanted = [gpus("small", 2, 4), gpus("three", 3, 2), gpus("big", 8, 1)]
    first = schedule_all(wanted, two_nodes("Device"))
    existing = [r for p in first for r in as_existing(p)]
    again = schedule_all(wanted, dataclasses.replace(two_nodes("Device"), replicas=tuple(existing)))
    assert [summary(p) for p in again] == [summary(p) for p in first]
    assert [(p.unscheduled, p.removed) for p in again] == [
        (p.unscheduled, p.removed) for p in first
    ]
