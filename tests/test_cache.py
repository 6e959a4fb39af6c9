"""Cache: list once, then follow watches; resume an ended watch without listing; list again
after "410 Gone" or a broken watch (an API server restart), backing off while lists fail;
report every change, including those missed while no watch was open."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from modelplane.cache import Cache

from tests.fakekube import FakeKube, settle

THINGS = "/apis/x/v1/things"


def thing(name: str, namespace: str = "ns", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": {}}


@dataclass
class World:
    kube: FakeKube
    cache: Cache
    changes: list[str]
    waits: list[float]

    def names(self, path: str = THINGS) -> list[str]:
        return [o["metadata"]["name"] for o in self.cache.items(path)]


Script = Callable[[World], Awaitable[None]]


def run(script: Script, *paths: str, seed: int = 3) -> World:
    kube = FakeKube()
    kube.put(THINGS, thing("a"))
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    cache = Cache(kube, paths or [THINGS], sleep=no_wait, rng=random.Random(seed))
    world = World(kube, cache, [], waits)
    cache.listeners.append(lambda path, obj: world.changes.append(obj["metadata"]["name"]))

    async def main() -> None:
        task = asyncio.create_task(cache.run())
        await settle()
        await script(world)
        await settle()
        task.cancel()

    asyncio.run(main())
    return world


async def nothing(world: World) -> None:
    return None


async def add_change_delete(world: World) -> None:
    world.kube.put(THINGS, thing("b"))
    world.kube.put(THINGS, {**thing("a"), "spec": {"size": 2}})
    world.kube.remove(THINGS, "ns", "a")
    await settle()


async def server_ends_watch(world: World) -> None:
    world.kube.end_watches()
    await settle()
    world.kube.put(THINGS, thing("b"))


async def gone(world: World) -> None:
    world.kube.compact()
    world.kube.end_watches()  # the next watch, from an old version, answers 410
    await settle()
    world.kube.put(THINGS, thing("c"))


async def restart(world: World) -> None:
    world.kube.failing_lists = 3  # the API server is down for three lists
    world.kube.break_watches()
    world.kube.remove(THINGS, "ns", "a")  # missed: no watch is open
    world.kube.put(THINGS, thing("b"))
    await settle()


@dataclass(frozen=True)
class Case:
    name: str
    script: Script
    names: list[str]
    changes: list[str]
    calls: list[tuple[str, dict[str, Any]]]
    waits: list[float]


CASES = [
    Case(
        "the first list fills the cache and the watch starts from its version",
        nothing, ["a"], ["a"],
        [("get", {}), ("watch", {"resourceVersion": "101"})], [],
    ),
    Case(
        "watch events add, change and delete objects and each one is reported",
        add_change_delete, ["b"], ["a", "b", "a", "a"],
        [("get", {}), ("watch", {"resourceVersion": "101"})], [],
    ),
    Case(
        "a watch the server ends resumes from the last version without a list",
        server_ends_watch, ["a", "b"], ["a", "b"],
        [("get", {}), ("watch", {"resourceVersion": "101"}),
         ("watch", {"resourceVersion": "101"})], [],
    ),
    Case(
        "410 Gone lists again and watches from the new list's version",
        gone, ["a", "c"], ["a", "c"],
        [("get", {}), ("watch", {"resourceVersion": "101"}), ("watch", {"resourceVersion": "101"}),
         ("get", {}), ("watch", {"resourceVersion": "102"})], [0.5],
    ),
    Case(
        "after a restart it lists until the server answers, backing off, and reports "
        "what it missed",
        restart, ["b"], ["a", "b", "a"],
        [("get", {}), ("watch", {"resourceVersion": "101"}), ("get", {}), ("get", {}),
         ("get", {}), ("get", {}), ("watch", {"resourceVersion": "103"})],
        [0.5, 1.0, 2.0, 4.0],
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_cache(case: Case) -> None:
    world = run(case.script)
    assert world.names() == case.names
    assert world.changes == case.changes
    assert [(verb, params) for verb, _, params in world.kube.calls] == case.calls
    assert [w / b for w, b in zip(world.waits, case.waits, strict=True)] == pytest.approx(
        [1.0] * len(case.waits), abs=0.5
    ), "each wait is within its jitter: half to all of the backoff"


def test_a_query_lists_and_watches_only_the_selected_objects() -> None:
    mine = f"{THINGS}?labelSelector=owner=me"

    async def script(world: World) -> None:
        world.kube.put(THINGS, thing("theirs", owner="you"))
        world.kube.put(THINGS, thing("ours", owner="me"))

    world = run(script, mine)
    assert world.names(mine) == ["ours"]
    assert world.kube.calls[:2] == [
        ("get", THINGS, {"labelSelector": "owner=me"}),
        ("watch", THINGS, {"labelSelector": "owner=me", "resourceVersion": "101"}),
    ]


def test_listed_objects_carry_their_kind_and_read_in_namespace_and_name_order() -> None:
    async def script(world: World) -> None:
        world.kube.put(THINGS, thing("z", "a-ns"))
        world.kube.end_watches()
        world.kube.compact()
        await settle()

    world = run(script)
    assert [(o["kind"], o["apiVersion"]) for o in world.cache.items(THINGS)] == [
        ("Thing", "x/v1")
    ] * 2
    assert [o["metadata"]["namespace"] for o in world.cache.items(THINGS)] == ["a-ns", "ns"]
    assert world.cache.get(THINGS, "z", "a-ns") is not None
    assert world.cache.get(THINGS, "z", "ns") is None


def test_a_watch_that_keeps_failing_after_good_lists_backs_off_further_each_time() -> None:
    async def script(world: World) -> None:
        for _ in range(4):
            world.kube.compact()
            world.kube.break_watches()
            await settle()

    world = run(script)
    bounds = [0.5, 1.0, 2.0, 4.0]
    assert len(world.waits) == 4
    assert all(b / 2 <= w <= b for w, b in zip(world.waits, bounds, strict=True))


def test_a_collection_the_server_does_not_serve_is_empty_and_listed_again_until_it_appears() -> (
    None
):
    kube = FakeKube()
    kube.absent.add(THINGS)
    waits: list[float] = []
    gate = asyncio.Event()

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        await gate.wait()
        gate.clear()

    cache = Cache(kube, [THINGS], sleep=wait)

    async def main() -> list[str]:
        task = asyncio.create_task(cache.run())
        await settle()
        assert cache.synced
        assert cache.items(THINGS) == []
        assert waits == [10.0]  # listed again after the backoff's cap, not at once
        kube.absent.discard(THINGS)
        kube.put(THINGS, thing("late"))
        gate.set()
        await settle()
        task.cancel()
        return [o["metadata"]["name"] for o in cache.items(THINGS)]

    assert asyncio.run(main()) == ["late"]
    assert [verb for verb, _, _ in kube.calls] == ["get", "get", "watch"]  # watched once served


def test_every_request_is_reported_as_answered_or_with_its_error() -> None:
    contacts: list[tuple[str, str]] = []

    async def script(world: World) -> None:
        world.cache.contact_listeners.append(
            lambda path, error: contacts.append((path, type(error).__name__))
        )
        world.kube.put(THINGS, thing("b"))  # a watch event
        await settle()
        world.kube.failing_lists = 1
        world.kube.break_watches()
        await settle()

    run(script)
    assert contacts == [
        (THINGS, "NoneType"),  # the event
        (THINGS, "RemoteProtocolError"),  # the watch cut
        (THINGS, "ConnectError"),  # the list refused
        (THINGS, "NoneType"),  # the list that worked
    ]
