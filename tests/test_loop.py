"""ReconcileLoop keeps reconciling after a pass fails, transiently or unexpectedly."""

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

    async def get(self, path: str) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "1"}, "items": []}

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
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
