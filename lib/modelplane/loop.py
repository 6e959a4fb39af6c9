"""The reconcile loop every service runs: an informer cache feeding a per-key work queue.

`ReconcileLoop.run` keeps a `Cache` of the watched collections (list + watch,
see `modelplane.cache`) and turns every change into keys on a `WorkQueue`
(`modelplane.workqueue`); up to `workers` keys are reconciled at a time, a key
never concurrently with itself, and a key changed several times while it waits
runs once. What a key means is the service's choice, through `keys(path, obj)`:

- per object (cluster-provisioner: an InferenceCluster's name): `reconcile(key)`
  reads what it needs from the cache and handles that one object;
- one key for everything (`ALL`, the default, for a decision made globally:
  fleet-scheduler's placement, gateway-config's front door, endpoint-manager's
  pass): every change queues `ALL`, and `reconcile_pass()` runs once however
  many changes arrived while it waited. Its `keys` may return no key for a
  change that cannot alter the decision (fleet-scheduler ignores its own status
  writes that way); the resync and a new leadership queue `ALL` regardless.

A reconcile may return seconds: its key runs again that soon (e.g. a time
limit falling due, a workload becoming ready that no watch here reports). A
change only another watch sees (a remote cluster's) queues its keys through
`enqueue`, or every key through `trigger`. A reconcile that raises (a
transient error, or an unexpected one, logged with its traceback: one bad
object must not stop the loop) is retried after a
per-key exponential backoff with jitter; a success resets it. Every
`resync_s` (a safety net only: it reads the cache, not the API) and whenever
this copy becomes the leader, every key is queued again.

Reconciles run on every copy; the service checks `elector.is_leader` before
writing, so standbys keep their read-only views (e.g. the gRPC APIs) current.
`readiness` is None once the cache has synced and each key queued by that
first sync has been reconciled successfully once.

Metrics (`modelplane.controllermetrics`, labels service and kind):
`modelplane_queue_depth`, `modelplane_queue_adds_total`,
`modelplane_queue_retries_total`, `modelplane_queue_work_duration_seconds`,
`modelplane_leader`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from modelplane import controllermetrics
from modelplane.cache import Cache, Json, Lister
from modelplane.kube import TRANSIENT
from modelplane.leader import LeaderElector
from modelplane.workqueue import Backoff, Clock, WorkQueue
from modelplane.writes import WritesFailedError

log = logging.getLogger("modelplane.loop")
ALL = "*"
"""The one key of a service whose decision is global."""
Pass = Callable[[], Awaitable[float | None]]
"""One whole reconcile pass; it may return how soon (seconds) to run again."""
Reconcile = Callable[[str], Awaitable[float | None]]
"""The reconcile of one key; it may return how soon (seconds) to run it again."""
Keys = Callable[[str, Json], Iterable[str]]
"""The keys a change of `obj` in the collection `path` queues."""


def everything(_path: str, _obj: Json) -> Iterable[str]:
    return (ALL,)


class ReconcileLoop:
    def __init__(
        self,
        service: str,
        kube: Lister,
        paths: Sequence[str],
        reconcile_pass: Pass | None,
        elector: LeaderElector,
        resync_s: float,
        *,
        reconcile: Reconcile | None = None,
        keys: Keys = everything,
        kind: str = "pass",
        workers: int = 1,
        cache: Cache | None = None,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """Whole-pass: give `reconcile_pass` (`keys` returning `ALL` or nothing; by default
        `everything`). Per key:
        give `reconcile` and `keys`, and None for `reconcile_pass`. `cache`, when given,
        is the one the service reads (its paths are watched; `paths` is then ignored)."""
        whole_pass = reconcile is None
        if reconcile is None:
            if reconcile_pass is None:
                raise ValueError("give reconcile_pass or reconcile")
            whole: Pass = reconcile_pass

            async def reconcile(_key: str) -> float | None:
                return await whole()

        self.service = service
        self.kind = kind
        self.cache = cache or Cache(kube, paths)
        self.paths = self.cache.paths
        self.reconcile = reconcile
        self.keys = keys
        self.fixed = (ALL,) if whole_pass else ()
        self.elector = elector
        self.resync_s = resync_s
        self.workers = workers
        self.queue = WorkQueue(clock)
        self.backoff = backoff or Backoff(base_s=0.1, cap_s=60.0, rng=random.Random())
        self.wake = asyncio.Event()
        self.unfinished: set[str] | None = None  # keys of the first sync not yet reconciled
        self.cache.listeners.append(self._changed)
        self.depth = controllermetrics.QUEUE_DEPTH.labels(service, kind)
        self.adds = controllermetrics.QUEUE_ADDS.labels(service, kind)
        self.retries = controllermetrics.QUEUE_RETRIES.labels(service, kind)
        self.duration = controllermetrics.WORK_DURATION.labels(service, kind)

    def readiness(self) -> str | None:
        if self.unfinished is None:
            return "watched collections not listed yet"
        if self.unfinished:
            return f"first reconcile of {len(self.unfinished)} key(s) not finished"
        return None

    def _add(self, keys: Iterable[str]) -> None:
        added = sum(self.queue.add(k) for k in keys)
        if added:
            self.adds.inc(added)
            self.wake.set()
        self.depth.set(self.queue.depth())

    def _changed(self, path: str, obj: Json) -> None:
        if self.unfinished is not None:
            self._add(self.keys(path, obj))

    def all_keys(self) -> list[str]:
        """Every key the cached objects map to (and `ALL` for a whole-pass loop)."""
        found: dict[str, None] = dict.fromkeys(self.fixed)
        for path in self.paths:
            for obj in self.cache.items(path):
                found.update(dict.fromkeys(self.keys(path, obj)))
        return list(found)

    def resync(self) -> None:
        self._add(self.all_keys())

    def enqueue(self, keys: Iterable[str]) -> None:
        """Queue `keys` now, for a change no watched collection shows (a remote cluster's
        watch). Before the first sync it does nothing: that sync queues every key anyway."""
        if self.unfinished is not None:
            self._add(keys)

    def trigger(self) -> None:
        """Queue every key now (`enqueue` of them all; endpoint-manager's remote watches)."""
        self.enqueue(self.all_keys())

    async def _sync_then_resync(self) -> None:
        await self.cache.wait_synced()
        keys = self.all_keys()
        self.unfinished = set(keys)
        self._add(keys)
        leader = controllermetrics.LEADER.labels(self.service)
        changed = getattr(self.elector, "changed", None) or asyncio.Event()
        while True:
            leader.set(1 if self.elector.is_leader else 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.resync_s)
            changed.clear()
            self.resync()

    async def _work(self, key: str) -> None:
        began = time.monotonic()
        again: float | None = None
        try:
            again = await self.reconcile(key)
        except (*TRANSIENT, WritesFailedError) as error:
            again = self._failed(key)
            log.warning(
                "reconcile failed",
                extra={"fields": {"service": self.service, "key": key, "error": str(error),
                                  "retry_s": round(again, 2)}},
            )  # fmt: skip
        except Exception:
            again = self._failed(key)
            log.exception(
                "reconcile failed unexpectedly; retrying after a backoff",
                extra={"fields": {"service": self.service, "key": key,
                                  "retry_s": round(again, 2)}},
            )  # fmt: skip
        else:
            self.backoff.forget(key)
            if self.unfinished:
                self.unfinished.discard(key)
        finally:
            self.duration.observe(time.monotonic() - began)
            self.queue.done(key)
            self.depth.set(self.queue.depth())
        if again:
            self.queue.add_after(key, again)

    def _failed(self, key: str) -> float:
        self.retries.inc()
        return self.backoff.failure(key)

    def _finished(self, running: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
        def finished(task: asyncio.Task[Any]) -> None:
            running.discard(task)
            self.wake.set()  # a worker is free

        return finished

    async def _dispatch(self) -> None:
        running: set[asyncio.Task[Any]] = set()
        try:
            while True:
                self.wake.clear()
                while len(running) < self.workers and (key := self.queue.pop()) is not None:
                    task = asyncio.create_task(self._work(key))
                    running.add(task)
                    task.add_done_callback(self._finished(running))
                self.depth.set(self.queue.depth())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.queue.next_due_in())
        finally:
            for task in running:
                task.cancel()

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.cache.run()),
            asyncio.create_task(self._sync_then_resync()),
            asyncio.create_task(self._dispatch()),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
