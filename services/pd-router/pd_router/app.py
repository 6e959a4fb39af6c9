"""Wiring: the pod sources, the load scraper, the proxy listener and the status endpoints.

`serve(config, stop)` runs until `stop` is set. Pods come either from a fixed
list per phase or from the EndpointSlices of the phase's Service, listed and
watched through `modelplane.cache.Cache` (one `Kube` client, in-cluster or
`kubeconfig`); every change re-reads the phase's ready pods. The status address
serves `/metrics`, `/healthz` and `/readyz` (`modelplane.statusserver`): ready
once at least one decode pod is known, until the router drains.

Draining (`stop` set: SIGTERM): `/readyz` answers 503 at once, the proxy stops
listening (a new connection is refused) and closes its idle connections, and
requests in flight, streams included, get up to `Config.shutdown_grace_s` to end
(`HttpServer.shutdown`); then the pod watch, the scraper and the status
endpoints stop and `serve` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from modelplane import statusserver
from modelplane.cache import Cache, Lister
from modelplane.httpserver import HttpServer

from pd_router.handoff import Router, Tuning
from pd_router.phase import Phase
from pd_router.pods import Pod, ready_pods, slices_path
from pd_router.scrape import scrape_forever

log = logging.getLogger("pd_router")
FIELD_MANAGER = "modelplane-pd-router"


@dataclass(frozen=True, slots=True)
class Source:
    """Where one phase's pods come from: a Service's EndpointSlices, or a fixed list."""

    service: str | None = None
    pods: tuple[Pod, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    prefill: Source
    decode: Source
    host: str = "0.0.0.0"
    port: int = 8000
    status_host: str = "0.0.0.0"
    status_port: int = 9090
    namespace: str = "default"
    kubeconfig: str | None = None
    port_name: str = "http"
    scrape_interval_s: float = 1.0
    connect_timeout_s: float = 2.0
    max_body_bytes: int = 64 * 1024 * 1024
    shutdown_grace_s: float = 30.0
    """How long requests in flight may take to finish once the router drains."""
    reuse_port: bool = False
    """Listen with SO_REUSEPORT (a worker of `--workers N`)."""
    tuning: Tuning = field(default_factory=Tuning)


def readiness(decode: Phase, draining: asyncio.Event) -> str | None:
    if draining.is_set():
        return "draining: shutting down"
    return None if decode.addresses else "no ready decode pod known yet"


def follow_slices(
    lister: Lister, namespace: str, port_name: str, phases: dict[str, Phase]
) -> Cache:
    """A cache of the EndpointSlices of each phase's Service (by name in `phases`) that
    updates the phase's pods on every change; run it with `Cache.run`."""
    watched = {slices_path(namespace, service): phase for service, phase in phases.items()}
    cache = Cache(lister, list(watched))

    def changed(path: str, _obj: object) -> None:
        watched[path].update(ready_pods(cache.items(path), port_name))

    cache.listeners.append(changed)
    return cache


async def _watch(config: Config, phases: dict[str, tuple[Source, Phase]]) -> None:
    services = {
        source.service: phase for source, phase in phases.values() if source.service is not None
    }
    if not services:
        return
    from modelplane.kube import Kube  # only a router that watches needs the client

    kube = await Kube.connect(config.kubeconfig, FIELD_MANAGER)
    await follow_slices(kube, config.namespace, config.port_name, services).run()


async def serve(
    config: Config, stop: asyncio.Event, bound: asyncio.Future[int] | None = None
) -> None:
    """Run the router until `stop`; `bound` receives the proxy's port once it listens."""
    prefill = Phase("prefill", config.connect_timeout_s)
    decode = Phase("decode", config.connect_timeout_s)
    phases = {"prefill": (config.prefill, prefill), "decode": (config.decode, decode)}
    for source, phase in phases.values():
        if source.service is None:
            phase.update(source.pods)
    server = HttpServer(
        replier=Router(config.tuning, prefill, decode).handle,
        max_body=config.max_body_bytes,
        error_status=502,
        error_message="router error",
    )
    port = await server.start(config.host, config.port, reuse_port=config.reuse_port)
    log.info("listening", extra={"fields": {"address": f"{config.host}:{port}", "port": port}})
    if bound is not None:
        bound.set_result(port)
    draining = asyncio.Event()
    tasks = [
        asyncio.create_task(_watch(config, phases)),
        asyncio.create_task(scrape_forever(decode, config.scrape_interval_s)),
        asyncio.create_task(
            statusserver.serve(
                config.status_host, config.status_port, lambda: readiness(decode, draining)
            )
        ),
    ]
    stopped = asyncio.create_task(stop.wait())
    pending: set[asyncio.Task[None]] = set(tasks)
    try:
        while not stopped.done():
            done, _ = await asyncio.wait({stopped, *pending}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopped}:
                pending.discard(task)  # type: ignore[arg-type]
                task.result()  # a failure (no API server to watch) ends the router
    finally:
        stopped.cancel()
        draining.set()
        log.info(
            "draining",
            extra={"fields": {"in_flight": server.in_flight, "grace_s": config.shutdown_grace_s}},
        )
        await server.shutdown(config.shutdown_grace_s)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        log.info("stopped", extra={"fields": {"cut": server.in_flight}})
