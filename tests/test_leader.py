"""LeaderElector against FakeKube: who holds the Lease after each try, and which requests
each try made (a leader renews with one PUT; a standby reads its watch, not the API)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from modelplane.kube import Kube
from modelplane.leader import LeaderElector

from tests.fakekube import FakeKube

LEASES = "/apis/coordination.k8s.io/v1/namespaces/system/leases"
LAPSED = "2000-01-01T00:00:00.000000Z"
FRESH = "2999-01-01T00:00:00.000000Z"  # renewed "in the future": never lapses in a test


def lease(holder: str, renewed: str) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "svc", "namespace": "system"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed,
                 "acquireTime": renewed, "leaseTransitions": 0},
    }  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    existing: dict[str, Any] | None
    watching: bool  # the copy's Lease watch has listed
    tries: int
    holder: list[bool]  # is_leader after each try
    requests: list[str]  # verbs of the requests the tries made
    before: Callable[[FakeKube], None] = lambda kube: None


CASES = [
    Case("a copy creates the absent Lease and renews it with one PUT each time after",
         None, True, 3, [True, True, True], ["create", "replace", "replace"]),
    Case("a standby reads a held Lease from its watch and makes no request",
         lease("other", FRESH), True, 3, [False, False, False], []),
    Case("before its watch has listed, a standby reads the Lease with a GET",
         lease("other", FRESH), False, 2, [False, False], ["get", "get"]),
    Case("a standby takes over a lapsed Lease with one PUT, then renews",
         lease("other", LAPSED), True, 2, [True, True], ["replace", "replace"]),
    Case("a standby takes over a released Lease",
         lease("", FRESH), True, 1, [True], ["replace"]),
]  # fmt: skip


async def elector_over(kube: FakeKube, identity: str, watching: bool) -> LeaderElector:
    elector = LeaderElector(cast(Kube, kube), "system", "svc", identity)
    if watching:
        await elector.cache.informers[elector.watched].relist()
    return elector


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tries(case: Case) -> None:
    kube = FakeKube("Lease", "coordination.k8s.io/v1")
    kube.collections[LEASES] = {}
    if case.existing:
        kube.put(LEASES, case.existing)

    async def scenario() -> list[bool]:
        elector = await elector_over(kube, "me", case.watching)
        kube.calls.clear()
        held = []
        for _ in range(case.tries):
            elector._set(await elector.try_once())
            held.append(elector.is_leader)
        return held

    assert asyncio.run(scenario()) == case.holder
    assert [verb for verb, _, _ in kube.calls] == case.requests


def test_two_standbys_racing_for_a_lapsed_lease_never_both_win() -> None:
    kube = FakeKube("Lease", "coordination.k8s.io/v1")
    kube.collections[LEASES] = {}
    kube.put(LEASES, lease("gone", LAPSED))

    async def scenario() -> list[bool]:
        a, b = await elector_over(kube, "a", True), await elector_over(kube, "b", True)
        return [await a.try_once(), await b.try_once()]  # b's watch has not seen a's write

    assert asyncio.run(scenario()) == [True, False]


def test_a_leader_whose_renewal_is_refused_reads_the_lease_and_steps_down() -> None:
    kube = FakeKube("Lease", "coordination.k8s.io/v1")
    kube.collections[LEASES] = {}

    async def scenario() -> tuple[bool, bool]:
        me = await elector_over(kube, "me", False)
        me._set(await me.try_once())
        kube.put(LEASES, lease("usurper", FRESH))  # taken over behind its back
        kube.calls.clear()
        me._set(await me.try_once())
        return me.is_leader, me.held is None

    assert asyncio.run(scenario()) == (False, True)
    assert [verb for verb, _, _ in kube.calls] == ["replace", "get"]


WAITS = [
    ("a Lease another copy renewed: wait for an event, at most the lease duration",
     lease("other", FRESH), True, 15.0),
    ("a lapsed Lease: try again soon", lease("other", LAPSED), True, 3.75),
    ("a released Lease: try again soon", lease("", FRESH), True, 3.75),
    ("a Lease still naming this copy (a renewal failed): try again soon",
     lease("me", FRESH), True, 3.75),
    ("before the watch has listed: read the Lease again soon", lease("other", FRESH), False, 3.75),
]  # fmt: skip


@pytest.mark.parametrize(("name", "existing", "watching", "wait"), WAITS, ids=[w[0] for w in WAITS])
def test_how_long_a_standby_waits(
    name: str, existing: dict[str, Any], watching: bool, wait: float
) -> None:
    kube = FakeKube("Lease", "coordination.k8s.io/v1")
    kube.collections[LEASES] = {}
    kube.put(LEASES, existing)

    async def scenario() -> float:
        return (await elector_over(kube, "me", watching))._standby_wait()

    assert asyncio.run(scenario()) == wait
