"""A watched API server: a cache of some of its collections, and whether it is still there.

For a server another service follows (an inference cluster), the watches are
the health check: while they deliver, no request is needed to know the server
is up. `Liveness` (pure: time is passed in) judges from how each request went
(`record(error, now)`):

- an answer (a list, a watch event, a watch the server ended, a probe answered)
  means reachable, and forgets earlier misses;
- a connection that cannot be made (refused, reset, no route, a TLS failure)
  means lost at once: the watch broke and cannot be re-established (the first
  reason is kept until the server answers again, so the loss reads the same);
- a missed deadline (connecting timed out, a probe unanswered in time, a
  connection the kernel's keepalive gave up on) or a 5xx status (the server
  cannot serve: its storage is down) is one miss, and only `misses_to_lose`
  misses in a row mean lost: one slow answer from a loaded server is not a loss;
- anything else (a watch cut mid-stream, a 4xx status) decides nothing by
  itself: the informer lists again, and how that goes decides.

`WatchedServer` connects (`connect()`, within `deadline_s`, again after a
backoff while that fails; these timings are its `Pace`), then runs a
`modelplane.cache.Cache` of the given collections on the server and a probe:
only when nothing was heard from the server for `idle_s` (its collections were
quiet) does it list one object of the first collection (`limit=1`: the API
server and its storage both answer) within `deadline_s`, and after a miss it
probes again every `retry_s` until an answer or the loss. `on_change()` is
called for every object change and whenever `failure()` (why the view cannot
be trusted, if it cannot) changes. A silent network is noticed by the watches'
TCP keepalive (`modelplane.kube.keep_alive`), a hung server by the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx

from modelplane.cache import Cache, Lister
from modelplane.workqueue import Backoff, Clock

log = logging.getLogger("modelplane.watchhealth")
PROBE = "probe"
"""The path `record`ed for the idle probe's outcome."""
CONNECT = "connect"
"""The path `record`ed for connecting's outcome."""


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def missed_deadline(error: BaseException) -> bool:
    """True for a timeout anywhere in the error's chain (kr8s wraps httpx's)."""
    return any(
        isinstance(e, TimeoutError | httpx.TimeoutException)
        or type(e).__name__ == "APITimeoutError"
        for e in _chain(error)
    )


def unavailable(error: BaseException) -> bool:
    """True for a 5xx status: the server answered but could not serve (its storage down)."""
    response = getattr(error, "response", None)
    return isinstance(response, httpx.Response) and response.status_code >= 500


def cannot_connect(error: BaseException) -> bool:
    """True when a connection to the server could not be made (refused, no route, TLS)."""
    return not missed_deadline(error) and isinstance(
        error, httpx.ConnectError | ConnectionRefusedError | OSError
    )


def describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


@dataclass
class Liveness:
    """Whether the server is reachable, from how its requests went (see the module)."""

    heard_at: float
    misses_to_lose: int = 3
    misses: int = 0
    lost: str = ""

    def record(self, error: BaseException | None, now: float) -> bool:
        """One request's outcome (None: answered); True when `lost` changed."""
        before = self.lost
        if error is None:
            self.heard_at, self.misses, self.lost = now, 0, ""
        elif missed_deadline(error) or unavailable(error):
            self.misses += 1
            if self.misses >= self.misses_to_lose and not before:
                self.lost = f"not served {self.misses} times in a row ({describe(error)})"
        elif cannot_connect(error) and not before:
            self.lost = describe(error)
        return self.lost != before


@dataclass(frozen=True)
class Pace:
    """How a `WatchedServer` probes: after `idle_s` without a word from the server, within
    `deadline_s`, again after `retry_s` while unanswered; lost after `misses_to_lose`."""

    idle_s: float = 30.0
    deadline_s: float = 5.0
    retry_s: float = 2.0
    misses_to_lose: int = 3


DEFAULT_PACE = Pace()


class WatchedServer:
    """A `Cache` of `paths` on one server, with its `Liveness`; `start` it, `stop` it."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Lister]],
        paths: Sequence[str],
        on_change: Callable[[], None],
        pace: Pace = DEFAULT_PACE,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.connect = connect
        self.paths = tuple(paths)
        self.on_change = on_change
        self.pace = pace
        self.clock = clock
        self.sleep = sleep
        self.liveness = Liveness(clock(), pace.misses_to_lose)
        self.cache: Cache | None = None
        self.errors: dict[str, str] = {}  # path -> its last request's error, while it lasts
        self.reported: str | None = None  # failure() when on_change was last called for it
        self.task: asyncio.Task[None] | None = None

    def failure(self) -> str | None:
        """Why the cached view cannot be trusted: the server is lost (`Liveness.lost`),
        connecting failed, or
        a collection could not be listed yet (with what its list met); "" when every
        collection is listed and the server answers; None while that is still under way."""
        if self.liveness.lost:
            return self.liveness.lost
        if self.cache is None:
            return f"cannot connect: {self.errors[CONNECT]}" if CONNECT in self.errors else None
        unlisted = [i for i in self.cache.informers.values() if not i.synced]
        for informer in unlisted:
            if informer.path in self.errors:
                return f"cannot list {informer.path}: {self.errors[informer.path]}"
        return None if unlisted else ""

    def items(self, path: str) -> list[Any]:
        """The cached objects of `path` (none before the first list)."""
        return self.cache.items(path) if self.cache is not None else []

    def record(self, path: str, error: BaseException | None) -> None:
        """How one request to the server went (a cache contact listener, and the probe)."""
        if error is None:
            self.errors.pop(path, None)
        else:
            self.errors[path] = describe(error)
        self.liveness.record(error, self.clock())
        failure = self.failure()
        if failure != self.reported:
            self.reported = failure
            log.info(
                "watched server: view whole" if failure == "" else "watched server: view failing",
                extra={"fields": {"path": path, "failure": failure}},
            )
            self.on_change()

    async def _attempt(self, call: Awaitable[Any]) -> tuple[Any, BaseException | None]:
        try:
            return await asyncio.wait_for(call, self.pace.deadline_s), None
        except Exception as error:  # judged by Liveness, like any request's
            return None, error

    async def _connected(self) -> Lister:
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        while True:
            kube, error = await self._attempt(self.connect())
            self.record(CONNECT, error)
            if error is None:
                return kube  # type: ignore[no-any-return]
            await self.sleep(backoff.failure(CONNECT))

    async def watch_liveness(self, kube: Lister) -> None:
        """Probe the server only while it is quiet: after `idle_s` without a word from it,
        then every `retry_s` while probes go unanswered (every `idle_s` once it is lost)."""
        collection, _, query = self.paths[0].partition("?")
        params: dict[str, str | int] = {**dict(parse_qsl(query)), "limit": 1}
        while True:
            quiet = self.clock() - self.liveness.heard_at
            if quiet < self.pace.idle_s:
                await self.sleep(self.pace.idle_s - quiet)
                continue
            _, error = await self._attempt(kube.get(collection, params))
            self.record(PROBE, error)
            if error is not None:
                await self.sleep(self.pace.idle_s if self.liveness.lost else self.pace.retry_s)

    async def run(self) -> None:
        kube = await self._connected()
        self.cache = Cache(kube, self.paths, sleep=self.sleep)
        self.cache.listeners.append(lambda _path, _obj: self.on_change())
        self.cache.contact_listeners.append(self.record)
        tasks = [
            asyncio.create_task(self.cache.run()),
            asyncio.create_task(self.watch_liveness(kube)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
