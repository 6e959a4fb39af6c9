"""The reconcile loop every service runs: watches wake it, a resync bounds how stale it gets.

`ReconcileLoop.run` starts one watch per API collection path (a path may carry
a query, e.g. `?labelSelector=app.kubernetes.io/managed-by=x`, to watch only
those objects); any event (or a watch starting over after an interruption, e.g.
an API server restart) wakes the loop, which then calls the service's
`reconcile_pass`. Without events it still runs every `resync_s`, or sooner when
the pass returns a number of seconds (it expects something to change by then,
e.g. a workload becoming ready that no watch here reports). A pass that
fails with a transient error is logged and retried on the next wake; so is one
that fails unexpectedly (logged with its traceback: one bad object must not
stop the loop). `readiness` is None once a pass has completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

from modelplane import controllermetrics
from modelplane.kube import TRANSIENT, Kube
from modelplane.leader import LeaderElector

log = logging.getLogger("modelplane.loop")
Pass = Callable[[], Awaitable[float | None]]
"""One reconcile pass; it may return how soon (seconds) to run again without an event."""


class ReconcileLoop:
    def __init__(
        self,
        service: str,
        kube: Kube,
        paths: Sequence[str],
        reconcile_pass: Pass,
        elector: LeaderElector,
        resync_s: float,
    ) -> None:
        self.service = service
        self.kube = kube
        self.paths = tuple(paths)
        self.reconcile_pass = reconcile_pass
        self.elector = elector
        self.resync_s = resync_s
        self.wake = asyncio.Event()
        self.synced = False

    def readiness(self) -> str | None:
        return None if self.synced else "first reconcile pass not finished"

    async def _watch(self, path: str) -> None:
        collection, _, query = path.partition("?")
        params = dict(parse_qsl(query))
        while True:
            try:
                # One object is enough: only the list's resourceVersion is needed.
                listing = await self.kube.get(collection, {**params, "limit": 1})
                version = (listing or {}).get("metadata", {}).get("resourceVersion", "0")
                self.wake.set()
                async for _ in self.kube.watch(collection, {**params, "resourceVersion": version}):
                    self.wake.set()
            except TRANSIENT as error:
                log.warning(
                    "watch interrupted",
                    extra={"fields": {"service": self.service, "path": path, "error": str(error)}},
                )
                await asyncio.sleep(1)

    async def run(self) -> None:
        watches = [asyncio.create_task(self._watch(p)) for p in self.paths]
        leader = controllermetrics.LEADER.labels(self.service)
        wait_s = self.resync_s
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait_s)
                self.wake.clear()
                leader.set(1 if self.elector.is_leader else 0)
                wait_s = self.resync_s
                try:
                    again = await self.reconcile_pass()
                    self.synced = True
                    wait_s = min(wait_s, again) if again else wait_s
                except TRANSIENT as error:
                    log.warning(
                        "reconcile pass failed",
                        extra={"fields": {"service": self.service, "error": str(error)}},
                    )
                except Exception:
                    log.exception(
                        "reconcile pass failed unexpectedly; retrying on the next wake",
                        extra={"fields": {"service": self.service}},
                    )
        finally:
            for task in watches:
                task.cancel()
