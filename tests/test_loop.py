"""ReconcileLoop keeps reconciling after a pass fails, transiently or unexpectedly, and
watches a path's query (a label selector) only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop


class QuietKube:
    """Stands in for the API server (a mock): empty lists, watches that never fire."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(("get", path, dict(params or {})))
        return {"metadata": {"resourceVersion": "7"}, "items": []}

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(("watch", path, dict(params)))
        await asyncio.Event().wait()
        yield {}


class Elector:
    is_leader = True


def test_a_failing_pass_is_retried_and_the_loop_becomes_ready() -> None:
    calls: list[int] = []
    failures: list[BaseException] = [httpx.ConnectError("refused"), KeyError("spec")]

    async def reconcile_pass() -> None:
        calls.append(1)
        if failures:
            raise failures.pop(0)

    async def scenario() -> ReconcileLoop:
        loop = ReconcileLoop(
            "test",
            cast(Kube, QuietKube()),
            ["/apis/x/v1/things"],
            reconcile_pass,
            cast(LeaderElector, Elector()),
            resync_s=0.01,
        )
        task = asyncio.create_task(loop.run())
        for _ in range(200):
            if loop.readiness() is None:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        return loop

    loop = asyncio.run(scenario())
    assert loop.readiness() is None
    assert len(calls) >= 3


def test_a_path_with_a_query_lists_and_watches_with_it_from_the_listed_version() -> None:
    kube = QuietKube()

    async def scenario() -> None:
        loop = ReconcileLoop(
            "test",
            cast(Kube, kube),
            ["/api/v1/services?labelSelector=app.kubernetes.io/managed-by=me"],
            lambda: asyncio.sleep(0),
            cast(LeaderElector, Elector()),
            resync_s=0.01,
        )
        task = asyncio.create_task(loop.run())
        for _ in range(200):
            if len(kube.calls) >= 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    selector = {"labelSelector": "app.kubernetes.io/managed-by=me"}
    assert kube.calls[:2] == [
        ("get", "/api/v1/services", {**selector, "limit": 1}),
        ("watch", "/api/v1/services", {**selector, "resourceVersion": "7"}),
    ]


def test_a_pass_that_returns_seconds_runs_again_that_soon_instead_of_at_resync() -> None:
    calls: list[int] = []

    async def reconcile_pass() -> float | None:
        calls.append(1)
        return 0.01 if len(calls) < 5 else None

    async def scenario() -> None:
        loop = ReconcileLoop(
            "test",
            cast(Kube, QuietKube()),
            ["/apis/x/v1/things"],  # its first listing wakes the first pass
            reconcile_pass,
            cast(LeaderElector, Elector()),
            resync_s=30,
        )
        task = asyncio.create_task(loop.run())
        await asyncio.sleep(1.0)
        task.cancel()

    asyncio.run(scenario())
    assert len(calls) == 5, "four quick passes after the first, then none until the resync"
