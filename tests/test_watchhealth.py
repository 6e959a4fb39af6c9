"""watchhealth: a watched server is lost on a connection that cannot be made or on several
missed deadlines in a row, never on one slow answer; its watches, not polls, keep it known."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import kr8s
import pytest
from modelplane.cache import Lister
from modelplane.watchhealth import Liveness, Pace, WatchedServer

from tests.fakekube import FakeKube, settle

THINGS = "/apis/x/v1/things"


def chained_timeout() -> BaseException:
    """What kr8s raises for httpx's timeout: its own error, caused by httpx's."""
    try:
        try:
            raise httpx.ReadTimeout("timed out")
        except httpx.ReadTimeout as cause:
            raise kr8s.APITimeoutError("Timeout while waiting for the Kubernetes API server") from (
                cause
            )
    except kr8s.APITimeoutError as error:
        return error


SLOW = TimeoutError()
REFUSED = httpx.ConnectError("[Errno 111] Connection refused")
CUT = httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def status(code: int) -> kr8s.ServerError:
    response = httpx.Response(code, request=httpx.Request("GET", "https://x/api/v1/nodes"))
    return kr8s.ServerError(f"status {code}", response=response)


FORBIDDEN = status(403)
UNAVAILABLE = status(503)


@dataclass(frozen=True)
class Case:
    name: str
    outcomes: list[BaseException | None]
    lost_after_each: list[bool]


CASES = [
    Case("one slow answer under load is not a loss", [SLOW, None], [False, False]),
    Case(
        "two slow answers, then one in time, then two slow again: never three in a row",
        [SLOW, SLOW, None, SLOW, SLOW], [False] * 5,
    ),
    Case("three missed deadlines in a row are a loss", [SLOW, SLOW, SLOW], [False, False, True]),
    Case(
        "kr8s's timeout, caused by httpx's, is a missed deadline",
        [chained_timeout(), chained_timeout(), chained_timeout()], [False, False, True],
    ),
    Case("a refused connection is a loss at once", [REFUSED], [True]),
    Case(
        "a watch cut mid-stream decides nothing: the list after it does",
        [CUT, CUT, None, CUT, REFUSED], [False, False, False, False, True],
    ),
    Case("a 4xx status is an answer of sorts: not a loss", [FORBIDDEN] * 4, [False] * 4),
    Case(
        "a 5xx status (its storage down) is a miss like a timeout; a 4xx between resets nothing",
        [UNAVAILABLE, SLOW, FORBIDDEN, UNAVAILABLE], [False, False, False, True],
    ),
    Case("any answer after a loss is the server back", [REFUSED, None], [True, False]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_liveness(case: Case) -> None:
    liveness = Liveness(heard_at=0.0)
    seen = []
    for now, outcome in enumerate(case.outcomes, start=1):
        liveness.record(outcome, float(now))
        seen.append(bool(liveness.lost))
    assert seen == case.lost_after_each


def test_a_loss_keeps_its_first_reason_until_the_server_answers() -> None:
    liveness = Liveness(heard_at=0.0)
    assert liveness.record(REFUSED, 1.0)
    assert not liveness.record(SLOW, 2.0)
    assert not liveness.record(httpx.ConnectError("no route to host"), 3.0)
    assert liveness.lost == "[Errno 111] Connection refused"
    assert liveness.record(None, 4.0)
    assert (liveness.lost, liveness.heard_at, liveness.misses) == ("", 4.0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Sleeper:
    """Sleeping moves the fake clock on; past `budget_s` of sleep it never returns."""

    def __init__(self, clock: Clock, budget_s: float) -> None:
        self.clock = clock
        self.budget_s = budget_s
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        if sum(self.slept) + seconds > self.budget_s:
            await asyncio.Event().wait()
        self.slept.append(seconds)
        self.clock.now += seconds
        await asyncio.sleep(0)


class HangingKube(FakeKube):
    """A server that answers `answered` probes (lists of one object), then none."""

    answered = 2

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        if (params or {}).get("limit") == 1 and probes(self) >= self.answered:
            await asyncio.Event().wait()
        return await super().get(path, params)


def watched(kube: FakeKube, sleep: Sleeper, clock: Clock) -> tuple[WatchedServer, list[str]]:
    """The server's view, and its `failure()` each time it calls `on_change`."""
    changes: list[str] = []

    async def connect() -> Lister:
        return kube

    server = WatchedServer(
        connect, [THINGS], lambda: changes.append(str(server.failure())),
        Pace(idle_s=30.0, deadline_s=0.01, retry_s=2.0), clock, sleep,
    )  # fmt: skip
    return server, changes


def probes(kube: FakeKube) -> int:
    """The probes that reached the server (lists of one object)."""
    return sum(1 for verb, _, params in kube.calls if verb == "get" and params.get("limit") == 1)


def test_the_view_follows_the_server_and_tells_when_it_is_lost_and_back() -> None:
    kube, clock = FakeKube(), Clock()
    kube.put(THINGS, {"metadata": {"name": "a"}})
    sleep = Sleeper(clock, budget_s=25.0)  # never quiet for 30 s: no probe
    server, changes = watched(kube, sleep, clock)

    async def main() -> None:
        assert server.failure() is None
        server.start()
        await settle()
        assert server.failure() == ""
        assert [o["metadata"]["name"] for o in server.items(THINGS)] == ["a"]
        kube.put(THINGS, {"metadata": {"name": "b"}})
        await settle()
        assert [o["metadata"]["name"] for o in server.items(THINGS)] == ["a", "b"]
        kube.failing_lists = 2  # the server went away: its watch breaks, lists are refused
        kube.break_watches()
        await settle()
        await server.stop()

    asyncio.run(main())
    # listed (told once as the view became whole, once for "a"), "b" arrived, the loss at
    # the first refused list (the cut watch alone was not one), back at the list answered
    assert changes == ["", "", "", "connection refused", ""]
    assert probes(kube) == 0


def test_a_quiet_server_is_probed_and_lost_only_after_several_unanswered_probes() -> None:
    kube, clock = HangingKube(), Clock()
    sleep = Sleeper(clock, budget_s=1000.0)
    server, changes = watched(kube, sleep, clock)

    async def main() -> None:
        server.start()
        while not server.liveness.lost:
            await asyncio.sleep(0.001)
        await server.stop()

    asyncio.run(main())
    assert probes(kube) == 2
    # quiet: probed 30 s after the last word from the server (the list, then each answered
    # probe); unanswered, probed again sooner; lost at the third miss in a row, and from
    # then on probed at the quiet pace
    assert sleep.slept == [30.0, 30.0, 30.0, 30.0, 2.0, 2.0, 30.0]
    assert server.liveness.misses == 3
    assert changes == ["", "not served 3 times in a row (TimeoutError)"]
