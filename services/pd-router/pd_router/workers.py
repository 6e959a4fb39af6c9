"""`--workers N`: N router processes on one listening port, under one supervisor.

The supervisor (the process started) spawns N workers (`multiprocessing`,
spawn). Each is a whole router (`app.serve`): its own pod watch, its own engine
scrape, its own connections; all listen on `--listen` with SO_REUSEPORT, so the
kernel spreads new client connections over them. Each worker's status
endpoints listen on a loopback port of its own; the supervisor serves
`--status-address`:

- `/metrics`: every worker's metrics added up (prometheus-client's multiprocess
  mode: each worker writes its values to files in a directory the supervisor
  made and reads; the in-flight gauge sums the live workers, the pod count takes
  the largest);
- `/readyz`: 200 once every worker's `/readyz` answered 200 at the last check
  (every `READY_CHECK_S`), 503 naming the first that did not; `/healthz` 200
  while the supervisor runs.

On SIGTERM or SIGINT the supervisor answers `/readyz` 503 at once and passes the
signal on; each worker drains as a single router does; the supervisor exits 0
once all have, or 1 as soon as any worker dies on its own (the pod restarts).

What differs from one process: each worker counts only its own requests in
flight. Decode's least-load choice adds them to the engines' own reported load
(shared by all workers through the scrape), so it stays close. Prefill's prefix
affinity is the same in every worker (the ring depends on the pods only); its
load bound, `ceil(balance x (in flight + 1) / pods)`, is applied per worker to
that worker's share, so a pod may carry up to about N - 1 prefills more than
the bound of one process would allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
from dataclasses import replace

from modelplane import statusserver

from pd_router.app import Config

log = logging.getLogger("pd_router")
READY_CHECK_S = 1.0
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker(config: Config, log_level: str, event_loop: str) -> None:
    """One worker process: a whole router on the shared port (runs in the child)."""
    from pd_router.__main__ import run

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor passes SIGTERM on
    run(config, log_level, event_loop)


async def _worker_ready(port: int) -> str | None:
    try:
        async with asyncio.timeout(READY_CHECK_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nhost: worker\r\n\r\n")
            answer = await reader.read()
            writer.close()
    except (OSError, TimeoutError) as error:
        return f"status endpoint unreachable: {error or 'timed out'}"
    if answer.startswith(b"HTTP/1.1 200"):
        return None
    return answer.partition(b"\r\n\r\n")[2].decode("utf-8", "replace") or "not ready"


def supervise(config: Config, workers: int, log_level: str, event_loop: str) -> int:
    """Run `workers` router processes until SIGTERM; the exit status."""
    with tempfile.TemporaryDirectory(prefix="pd-router-metrics-") as metrics_dir:
        os.environ[METRICS_DIR_ENV] = metrics_dir  # inherited by the spawned workers
        return asyncio.run(_supervise(config, workers, log_level, event_loop, metrics_dir))


async def _supervise(
    config: Config, count: int, log_level: str, event_loop: str, metrics_dir: str
) -> int:
    from prometheus_client import CollectorRegistry, multiprocess

    spawn = multiprocessing.get_context("spawn")
    ports = [_free_loopback_port() for _ in range(count)]
    processes = []
    for i, port in enumerate(ports):
        worker = replace(config, status_host="127.0.0.1", status_port=port, reuse_port=True)
        processes.append(
            spawn.Process(
                target=_worker, args=(worker, log_level, event_loop), name=f"pd-router-worker-{i}"
            )
        )
    for process in processes:
        process.start()
    pids = [p.pid for p in processes]
    log.info("workers started", extra={"fields": {"workers": count, "pids": pids}})
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, metrics_dir)  # type: ignore[no-untyped-call]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    state: dict[str, str | None] = {"why": "workers starting"}

    def readiness() -> str | None:
        return "draining: shutting down" if stop.is_set() else state["why"]

    async def check() -> None:
        while True:
            for i, port in enumerate(ports):
                why = await _worker_ready(port)
                if why is not None:
                    state["why"] = f"worker {i}: {why}"
                    break
            else:
                state["why"] = None
            await asyncio.sleep(READY_CHECK_S)

    async def died() -> int:
        while all(p.is_alive() for p in processes):
            await asyncio.sleep(0.2)
        return next(i for i, p in enumerate(processes) if not p.is_alive())

    tasks = [
        asyncio.create_task(
            statusserver.serve(config.status_host, config.status_port, readiness, registry)
        ),
        asyncio.create_task(check()),
    ]
    stopping = asyncio.create_task(stop.wait())
    dead = asyncio.create_task(died())
    await asyncio.wait((stopping, dead, *tasks), return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if not stop.is_set():
        status = 1
        log.error("a worker stopped; stopping the others",
                  extra={"fields": {"worker": dead.result() if dead.done() else None}})  # fmt: skip
    stop.set()
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        await asyncio.to_thread(process.join)
        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid, metrics_dir)  # type: ignore[no-untyped-call]
    for task in (*tasks, stopping, dead):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    log.info("stopped", extra={"fields": {"workers": count, "status": status}})
    return status
