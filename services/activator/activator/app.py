"""Wiring: the watch cache, the holding state, the HTTP listener, the reporter and the status.

`serve(config, stop)` runs until `stop` is set: a `modelplane.cache.Cache` of
every ModelService and ModelEndpoint on the control cluster (list + watch,
through `kube`); every change rebuilds the catalog (`catalog.catalog`, once per
event-loop turn however many events arrived) and hands it to `Holding`, which
wakes the requests of services that got an endpoint; the HTTP server
(`modelplane.httpserver`) answers with `proxy.Activator`; with a scaler
target, a `report.Reporter` tells it what is held. `/metrics`, `/healthz` and
`/readyz` (ready once both collections were listed) on the status address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from modelplane import statusserver
from modelplane.cache import Cache, Lister
from modelplane.httpserver import HttpServer
from modelplane.wellknown import API

from activator import metrics
from activator.catalog import catalog
from activator.holding import Holding
from activator.proxy import Activator
from activator.report import Reporter

log = logging.getLogger("activator")
SERVICES = f"{API}/modelservices"
ENDPOINTS = f"{API}/modelendpoints"


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 8090
    status_host: str = "0.0.0.0"
    status_port: int = 9096
    name: str = "activator"
    report_interval_s: float = 2.0
    max_body_bytes: int = 64 * 1024 * 1024
    connect_timeout_s: float = 5.0


def follow(lister: Lister, holding: Holding) -> Cache:
    """A cache of ModelServices and ModelEndpoints that keeps `holding`'s catalog current;
    run it with `Cache.run`."""
    cache = Cache(lister, [SERVICES, ENDPOINTS])
    pending: list[asyncio.Handle] = []

    def rebuild() -> None:
        pending.clear()
        holding.update(catalog(cache.items(SERVICES), cache.items(ENDPOINTS)))

    def changed(_path: str, _obj: object) -> None:
        if not pending:
            pending.append(asyncio.get_running_loop().call_soon(rebuild))

    cache.listeners.append(changed)
    return cache


async def serve(
    config: Config,
    stop: asyncio.Event,
    lister: Lister,
    scaler: Any | None = None,
    bound: asyncio.Future[int] | None = None,
) -> None:
    """Run until `stop`; `scaler` is the `Activation` stub (None: no reports); `bound`
    receives the listener's port."""
    holding = Holding()
    shown = metrics.HeldGauge()
    holding.on_change.append(lambda: shown.show(holding.held()))
    cache = follow(lister, holding)
    timeout = httpx.Timeout(None, connect=config.connect_timeout_s)
    client = httpx.AsyncClient(trust_env=False, timeout=timeout)
    server = HttpServer(
        replier=Activator(holding, client).handle,
        max_body=config.max_body_bytes,
        error_status=502,
        error_message="activator error",
    )
    port = await server.start(config.host, config.port)
    log.info("listening", extra={"fields": {"address": f"{config.host}:{port}"}})
    if bound is not None:
        bound.set_result(port)

    def readiness() -> str | None:
        return None if cache.synced else "ModelServices and ModelEndpoints not listed yet"

    tasks = [
        asyncio.create_task(cache.run()),
        asyncio.create_task(statusserver.serve(config.status_host, config.status_port, readiness)),
    ]
    if scaler is not None:
        reporter = Reporter(scaler, config.name, holding.held, config.report_interval_s)
        holding.on_change.append(reporter.wake)
        tasks.append(asyncio.create_task(reporter.run()))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await server.shutdown(0)
        await client.aclose()
        log.info("stopped")
