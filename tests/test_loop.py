"""ReconcileLoop: cache changes become keys; a key changed while it waits runs once, never
beside itself; at most `workers` keys run at a time; failures back off, a returned delay
requeues; resync and a new leader queue every key; readiness waits for the first round.

The loop runs against FakeKube with an injected clock: nothing here waits on real time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
from modelplane.leader import LeaderElector
from modelplane.loop import ALL, ReconcileLoop
from modelplane.workqueue import Backoff

from tests.fakekube import FakeKube, settle

THINGS = "/apis/x/v1/things"


class Elector:
    def __init__(self) -> None:
        self.is_leader = True
        self.changed = asyncio.Event()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def thing(name: str, size: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"size": size}}


def by_name(_path: str, obj: dict[str, Any]) -> Iterable[str]:
    return (obj["metadata"]["name"],)


@dataclass
class World:
    kube: FakeKube
    loop: ReconcileLoop
    clock: Clock
    elector: Elector
    ran: list[str] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    most: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    fail: dict[str, int] = field(default_factory=dict)  # key -> failures left
    again: dict[str, float] = field(default_factory=dict)  # key -> seconds to return

    async def reconcile(self, key: str) -> float | None:
        self.running.add(key)
        self.most = max(self.most, len(self.running))
        try:
            await self.gate.wait()
            self.ran.append(key)
            if self.fail.get(key):
                self.fail[key] -= 1
                raise httpx.ConnectError("refused")
            return self.again.get(key)
        finally:
            self.running.discard(key)

    async def tick(self, seconds: float) -> None:
        self.clock.now += seconds
        self.loop.wake.set()
        await settle()


Script = Callable[[World], Awaitable[None]]


def play(script: Script, names: Iterable[str] = ("a", "b"), whole: bool = False,
         workers: int = 4, gated: bool = False, ignoring: bool = False) -> World:  # fmt: skip
    """Run `script` against a loop over `names`; with `gated`, reconciles wait for the
    script to open `world.gate`; with `ignoring`, a whole-pass loop's `keys` finds no
    change worth a pass."""

    async def main() -> World:
        kube = FakeKube()
        for name in names:
            kube.put(THINGS, thing(name))
        clock, elector = Clock(), Elector()
        world: World
        kwargs: dict[str, Any] = (
            {} if whole else {"reconcile": lambda key: world.reconcile(key), "keys": by_name}
        )
        if ignoring:
            kwargs["keys"] = lambda _path, _obj: ()
        loop = ReconcileLoop(
            "test",
            kube,
            [THINGS],
            (lambda: world.reconcile(ALL)) if whole else None,
            cast(LeaderElector, elector),
            resync_s=3600,
            workers=workers,
            clock=clock,
            backoff=Backoff(1, 8, jitter=0, rng=random.Random(0)),
            **kwargs,
        )
        world = World(kube, loop, clock, elector)
        if not gated:
            world.gate.set()
        task = asyncio.create_task(loop.run())
        await settle()
        await script(world)
        await settle()
        task.cancel()
        return world

    return asyncio.run(main())


async def idle(world: World) -> None:
    return None


async def changes_while_waiting(world: World) -> None:
    world.ran.clear()
    world.gate.clear()
    world.kube.put(THINGS, thing("a", 2))  # runs, and blocks on the gate
    await settle()
    for size in (3, 4, 5):  # three changes while it runs: one more reconcile
        world.kube.put(THINGS, thing("a", size))
    world.kube.put(THINGS, thing("b", 2))
    await settle()
    world.gate.set()


async def deleted(world: World) -> None:
    world.ran.clear()
    world.kube.remove(THINGS, "ns", "b")


async def failing(world: World) -> None:
    world.ran.clear()
    world.fail["a"] = 3
    world.kube.put(THINGS, thing("a", 2))
    await settle()
    for seconds in (0.5, 0.5, 2, 4):  # due after 1, 2 and 4 s: the backoff doubles
        await world.tick(seconds)
    world.ran.append(f"retries={world.loop.backoff.retries('a')}")


async def requeued(world: World) -> None:
    world.ran.clear()
    world.again["a"] = 30
    world.kube.put(THINGS, thing("a", 2))
    await settle()
    world.again.clear()
    await world.tick(29)
    world.ran.append("29s")
    await world.tick(1)
    await world.tick(60)


async def resync(world: World) -> None:
    world.ran.clear()
    world.loop.resync()


async def triggered(world: World) -> None:
    world.ran.clear()
    world.loop.trigger()


async def new_leader(world: World) -> None:
    world.ran.clear()
    world.elector.changed.set()


@dataclass(frozen=True)
class Case:
    name: str
    script: Script
    ran: list[str]
    whole: bool = False


CASES = [
    Case("the first sync reconciles every key once", idle, ["a", "b"]),
    Case(
        "a key changed three times while it runs runs once more, other keys beside it",
        changes_while_waiting, ["a", "b", "a"],
    ),
    Case("a deleted object's key is reconciled (and finds it gone)", deleted, ["b"]),
    Case(
        "a failing key is retried after a backoff that doubles, until it succeeds",
        failing, ["a", "a", "a", "a", "retries=0"],
    ),
    Case(
        "a key whose reconcile returns 30 runs again after 30 s on the clock, not before",
        requeued, ["a", "29s", "a"],
    ),
    Case("a resync queues every cached key", resync, ["a", "b"]),
    Case("becoming the leader queues every cached key", new_leader, ["a", "b"]),
    Case("a whole-pass loop runs one pass for the first sync", idle, [ALL], whole=True),
    Case(
        "a trigger from outside the watched collections runs one more pass",
        triggered, [ALL], whole=True,
    ),
    Case("a trigger queues every cached key of a per-key loop", triggered, ["a", "b"]),
    Case(
        "a whole-pass loop runs one more pass for any number of changes while it runs",
        changes_while_waiting, [ALL, ALL], whole=True,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_loop(case: Case) -> None:
    assert play(case.script, whole=case.whole).ran == case.ran


def test_a_whole_pass_loop_runs_no_pass_for_a_change_its_keys_ignore_but_still_resyncs() -> None:
    async def script(world: World) -> None:
        world.ran.append("synced")
        world.kube.put(THINGS, thing("a", 2))
        await settle()
        world.ran.append("changed")
        world.loop.resync()

    world = play(script, whole=True, ignoring=True)
    assert world.ran == [ALL, "synced", "changed", ALL]


def test_no_more_than_workers_keys_run_at_once_and_all_run() -> None:
    async def script(world: World) -> None:
        assert sorted(world.running) == ["a", "b"]
        world.gate.set()

    world = play(script, names="abcde", workers=2, gated=True)
    assert (world.most, sorted(world.ran)) == (2, list("abcde"))


def test_a_key_never_runs_beside_itself() -> None:
    async def script(world: World) -> None:
        world.gate.clear()
        for size in range(2, 6):
            world.kube.put(THINGS, thing("a", size))
            await settle()
        world.gate.set()

    world = play(script, names="a", workers=4)
    assert world.most == 1


def test_readiness_waits_for_the_first_list_and_a_first_success_of_each_key() -> None:
    seen: list[str | None] = []

    async def main() -> None:
        kube = FakeKube()
        kube.put(THINGS, thing("a"))
        kube.put(THINGS, thing("b"))
        kube.failing_lists = 1
        failures = {"b": 1}

        async def reconcile(key: str) -> None:
            if failures.get(key):
                failures[key] -= 1
                raise KeyError("spec")

        clock = Clock()
        loop = ReconcileLoop(
            "test", kube, [THINGS], None, cast(LeaderElector, Elector()), 3600,
            reconcile=reconcile, keys=by_name, clock=clock,
            backoff=Backoff(1, 8, jitter=0),
        )  # fmt: skip
        seen.append(loop.readiness())
        informer = loop.cache.informers[THINGS]

        async def no_wait(_seconds: float) -> None:
            await asyncio.sleep(0)

        informer.sleep = no_wait
        task = asyncio.create_task(loop.run())
        await settle()
        seen.append(loop.readiness())  # b failed, is waiting for its retry
        clock.now += 1
        loop.wake.set()
        await settle()
        seen.append(loop.readiness())
        task.cancel()

    asyncio.run(main())
    assert seen == [
        "watched collections not listed yet",
        "first reconcile of 1 key(s) not finished",
        None,
    ]
