"""The scaler's background loop: every serving replica's engine metrics, every few seconds.

Every `TICK_S` it takes the control cluster's objects (`objects()`: ModelDeployments,
ModelServices, ModelReplicas from endpoint-manager's watch cache, or None before that
cache has listed), hands them to the `ScalerState`, and scrapes
`GET <replica address>/metrics` (the replica's path on its cluster's gateway, as the
health probe goes; for a PrefillDecode replica `/modelplane/load`, its router's sum over
every decode pod: `scalermetrics.load_path`) of each serving replica whose last scrape
began `every_s` or more ago: at most one scrape per replica per `every_s`, however often
KEDA asks. At most `limit` scrapes run at once, each given `timeout_s`. A scrape that fails
or answers anything but Prometheus text stores nothing; the replica's previous sample ages
out (`scalermetrics.SAMPLE_STALE_S`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from endpoint_manager.scalermetrics import (
    EngineSample,
    Objects,
    parse_engine_metrics,
    scrape_targets,
)
from endpoint_manager.scalerstate import ScalerState

SCRAPE_S = 2.0
TICK_S = 0.5
LIMIT = 16
TIMEOUT_S = 2.0
log = logging.getLogger("endpoint_manager.scrape")


def due(
    targets: Mapping[str, str], last: Mapping[str, float], now: float, every_s: float
) -> list[str]:
    """The replicas (keys of `targets`) to scrape now: never scraped, or `every_s` ago."""
    return [key for key in targets if now - last.get(key, -float("inf")) >= every_s]


class EngineScraper:
    def __init__(
        self,
        http: httpx.AsyncClient,
        state: ScalerState,
        objects: Callable[[], Objects | None],
        *,
        every_s: float = SCRAPE_S,
        limit: int = LIMIT,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.state = state
        self.objects = objects
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.sleep = sleep
        self.slots = asyncio.Semaphore(limit)
        self.last: dict[str, float] = {}  # replica key -> when its last scrape began
        self.sent = 0
        """Scrapes sent since start (for measurements)."""

    async def _scrape(self, key: str, url: str) -> tuple[str, EngineSample | None]:
        async with self.slots:
            self.sent += 1
            try:
                reply = await self.http.get(url, timeout=self.timeout_s)
                if reply.status_code != 200:
                    return key, None
                running, waiting = parse_engine_metrics(reply.text)
            except (httpx.HTTPError, ValueError) as error:
                log.debug("scrape failed", extra={"fields": {"url": url, "error": str(error)}})
                return key, None
            return key, EngineSample(running, waiting, self.clock())

    async def once(self) -> None:
        """One tick: store the objects, scrape the replicas that are due, store the samples."""
        objects = self.objects()
        if objects is None:
            return
        targets = scrape_targets(objects.replicas)
        self.state.set_objects(objects, set(targets))
        for key in [k for k in self.last if k not in targets]:
            del self.last[key]
        now = self.clock()
        chosen = due(targets, self.last, now, self.every_s)
        for key in chosen:
            self.last[key] = now
        results = await asyncio.gather(*(self._scrape(k, targets[k]) for k in chosen))
        samples = {key: sample for key, sample in results if sample is not None}
        if samples:
            self.state.set_samples(samples)

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as error:  # the loop outlives any one tick
                log.warning("scrape tick failed", extra={"fields": {"error": str(error)}})
            await self.sleep(TICK_S)
