"""Property tests on random fleets and deployments.

Capacity is recounted independently of the scheduler's ledger; placement must
be deterministic, independent of cluster order, and stable when fed back.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelplane.quantity import Quantity
from modelplane.scheduling import schedule_all
from modelplane.scheduling.model import Deployment, Fleet, Placement

from tests.scheduling.builders import (
    as_existing,
    cluster,
    deployment,
    engine,
    fleet,
    gpu,
    hw,
    mem_at_least,
    member,
    pool,
    request,
    summary,
)

CLASSES = {
    "l4": hw("l4", gpu("23034Mi", count=1)),
    "a100": hw("a100", gpu("40960Mi", count=2)),
    "h100": hw("h100", gpu("81559Mi", count=8)),
}
MEMORY = {"l4": "23034Mi", "a100": "40960Mi", "h100": "81559Mi"}
GPUS = {"l4": 1, "a100": 2, "h100": 8}
THRESHOLDS = ["10Gi", "20Gi", "35Gi", "80Gi"]

clusters_st = st.lists(
    st.builds(
        lambda pools, region, ready: (pools, region, ready),
        st.lists(
            st.tuples(st.sampled_from(sorted(CLASSES)), st.integers(0, 4)), min_size=1, max_size=3
        ),
        st.sampled_from(["a", "b"]),
        st.booleans(),
    ),
    min_size=0,
    max_size=6,
)

member_st = st.tuples(st.sampled_from(THRESHOLDS), st.integers(1, 2))


@st.composite
def engine_st(draw: st.DrawFn, name: str) -> object:
    threshold, count = draw(member_st)
    copies = draw(st.integers(1, 2))
    if draw(st.booleans()):
        return engine(
            name,
            member("Standalone", request("gpu", count, mem_at_least(threshold))),
            copies=copies,
        )
    nodes = draw(st.integers(1, 2))
    return engine(
        name,
        member("Leader", request("gpu", count, mem_at_least(threshold))),
        member("Worker", request("gpu", count, mem_at_least(threshold)), nodes=nodes),
        copies=copies,
    )


@st.composite
def deployments_st(draw: st.DrawFn) -> list[Deployment]:
    result = []
    for i in range(draw(st.integers(1, 4))):
        engines = [draw(engine_st(f"e{j}")) for j in range(draw(st.integers(1, 2)))]
        selector = draw(st.sampled_from([{}, {"region": "a"}, {"region": "b"}]))
        result.append(
            deployment(f"d{i}", *engines, replicas=draw(st.integers(0, 4)), **selector)  # type: ignore[arg-type]
        )
    return result


def build_fleet(raw: list[tuple[list[tuple[str, int]], str, bool]]) -> Fleet:
    clusters = [
        cluster(
            f"c{i}",
            *(pool(f"p{j}", cls, n) for j, (cls, n) in enumerate(pools)),
            ready=ready,
            region=region,
        )
        for i, (pools, region, ready) in enumerate(raw)
    ]
    return fleet(clusters, list(CLASSES.values()))


def recount(placements: tuple[Placement, ...], deployments: list[Deployment], f: Fleet) -> None:
    """Independent capacity and matching check, from the specs, not the scheduler's ledger."""
    capacity = {(c.name, p.name): p.nodes for c in f.clusters for p in c.pools}
    classes = {(c.name, p.name): p.class_name for c in f.clusters for p in c.pools}
    used: Counter[tuple[str, str]] = Counter()
    for placement, spec in zip(placements, deployments, strict=True):
        engines = {e.name: e for e in spec.engines}
        for placed in placement.replicas:
            assert {e.engine for e in placed.engines} == set(engines)
            for pe in placed.engines:
                eng = engines[pe.engine]
                cls = classes[(placed.cluster, pe.pool)]
                for m in eng.members:
                    for r in m.requests:
                        threshold = r.selectors[0].split('quantity("')[1].split('"')[0]
                        assert Quantity.parse(MEMORY[cls]) >= Quantity.parse(threshold)
                        assert GPUS[cls] >= r.count
                expected_cost = eng.copies * sum(m.pods for m in eng.members)
                assert pe.node_cost == expected_cost
                used[(placed.cluster, pe.pool)] += expected_cost
    for key, nodes in used.items():
        assert nodes <= capacity[key], f"{key} overcommitted: {nodes} > {capacity[key]}"


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(clusters_st, deployments_st())
def test_no_pool_is_ever_overcommitted_and_every_pool_matches(raw, deployments) -> None:  # type: ignore[no-untyped-def]
    f = build_fleet(raw)
    recount(schedule_all(deployments, f), deployments, f)


@SETTINGS
@given(clusters_st, deployments_st())
def test_the_same_input_gives_the_same_output(raw, deployments) -> None:  # type: ignore[no-untyped-def]
    f = build_fleet(raw)
    assert schedule_all(deployments, f) == schedule_all(deployments, f)


@SETTINGS
@given(clusters_st, deployments_st(), st.randoms(use_true_random=False))
def test_reordering_clusters_does_not_change_placement(raw, deployments, rnd) -> None:  # type: ignore[no-untyped-def]
    f = build_fleet(raw)
    shuffled = list(f.clusters)
    rnd.shuffle(shuffled)
    g = dataclasses.replace(f, clusters=tuple(shuffled))
    assert schedule_all(deployments, f) == schedule_all(deployments, g)


@SETTINGS
@given(clusters_st, deployments_st())
def test_feeding_a_placement_back_changes_nothing(raw, deployments) -> None:  # type: ignore[no-untyped-def]
    f = build_fleet(raw)
    first = schedule_all(deployments, f)
    existing = [r for p in first for r in as_existing(p)]
    again = schedule_all(deployments, dataclasses.replace(f, replicas=tuple(existing)))
    assert [summary(p) for p in again] == [summary(p) for p in first]
    assert all(r.retained for p in again for r in p.replicas)
    assert all(not p.removed for p in again)
    assert [p.unscheduled for p in again] == [p.unscheduled for p in first]


@SETTINGS
@given(clusters_st, deployments_st(), st.lists(st.integers(0, 5), min_size=4, max_size=4))
def test_rescaling_keeps_capacity_and_never_moves_a_replica(raw, deployments, counts) -> None:  # type: ignore[no-untyped-def]
    f = build_fleet(raw)
    first = schedule_all(deployments, f)
    existing = [r for p in first for r in as_existing(p)]
    rescaled = [
        dataclasses.replace(d, replicas=n) for d, n in zip(deployments, counts, strict=False)
    ]
    second = schedule_all(rescaled, dataclasses.replace(f, replicas=tuple(existing)))
    recount(second, rescaled, f)
    for before, after in zip(first, second, strict=True):
        old = summary(before)
        for placed in after.replicas:
            if placed.retained:
                assert old[placed.index][0] == placed.cluster
        kept = {r.index for r in after.replicas if r.retained}
        dropped = {r.replica.index for r in after.removed}
        if kept and dropped:
            assert max(kept) < min(dropped), "scale down must drop the highest indices"


@st.composite
def edit_st(draw: st.DrawFn) -> tuple[int, list[object] | None, int | None]:
    """(which deployment, its new engines or None to keep them, its new replicas or None)."""
    which = draw(st.integers(0, 3))
    engines = None
    if draw(st.booleans()):
        engines = [draw(engine_st(f"e{j}")) for j in range(draw(st.integers(1, 2)))]
    replicas = draw(st.one_of(st.none(), st.integers(0, 4)))
    return which, engines, replicas


# Edits only matter where something was placed: at least one cluster, all Ready.
ready_clusters_st = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.sampled_from(sorted(CLASSES)), st.integers(1, 4)), min_size=1, max_size=3
        ),
        st.sampled_from(["a", "b"]),
        st.just(True),
    ),
    min_size=1,
    max_size=4,
)


@settings(SETTINGS, max_examples=300)
@given(ready_clusters_st, deployments_st(), st.lists(edit_st(), min_size=1, max_size=4))
def test_after_any_sequence_of_edits_no_pool_is_overcommitted(raw, deployments, edits) -> None:  # type: ignore[no-untyped-def]
    """Each pass feeds the last one's replicas back with the cost they were placed at; the
    recount charges every replica what the edited spec says, independently of the ledger."""
    f = build_fleet(raw)
    current = list(deployments)
    placements = schedule_all(current, f)
    recount(placements, current, f)
    for which, engines, replicas in edits:
        if which >= len(current):
            continue
        edited = current[which]
        if engines is not None:
            edited = dataclasses.replace(edited, engines=tuple(engines))
        if replicas is not None:
            edited = dataclasses.replace(edited, replicas=replicas)
        current[which] = edited
        existing = [r for p in placements for r in as_existing(p)]
        placements = schedule_all(current, dataclasses.replace(f, replicas=tuple(existing)))
        recount(placements, current, f)
