"""`modelplane-scheduler-extender` (or `python -m scheduler_extender`): run the extender.

Serves `POST /filter` and `POST /prioritize` (kube-scheduler's extender protocol)
and `/healthz`, `/readyz` (ready once every watch has listed) and `/metrics` on
`--listen`, from watches of the cluster's DRA objects, until SIGTERM or SIGINT.
Before its watches have listed, `filter` answers with an `Error`, so a scheduler
whose extender is not `ignorable` retries the pod instead of binding it blind.
Once its watches have listed, it holds and renews the Lease
`kube-system/modelplane-scheduler-extender` (`modelplane.leader`: renewed every
7.5 s, lapsing after 15 s, released on a graceful stop), by which
cluster-provisioner reports the extension Healthy and the fleet counts the
cluster's devices. Exit status 2 when the command line is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import socket
import time

from modelplane import logs
from modelplane.cache import Cache
from modelplane.httpserver import HttpServer, Request, Response, json_response, text_response
from modelplane.kube import TRANSIENT, Kube
from modelplane.leader import LeaderElector
from modelplane.service import split_address
from modelplane.wellknown import SCHEDULER_EXTENDER_LEASE
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from scheduler_extender.extender import PATHS, Extender

log = logging.getLogger("scheduler_extender")
CALLS = Counter(
    "modelplane_extender_calls_total", "Extender calls by verb and outcome", ["verb", "outcome"]
)
SECONDS = Histogram(
    "modelplane_extender_call_seconds",
    "Time to answer one extender call",
    ["verb"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane-scheduler-extender", description=__doc__)
    p.add_argument("--kubeconfig", help="the inference cluster (default: in-cluster)")
    p.add_argument("--listen", default="127.0.0.1:8888", help="HOST:PORT of the extender")
    p.add_argument("--log-level", default="INFO")
    return p


class App:
    def __init__(self, extender: Extender) -> None:
        self.extender = extender

    async def handle(self, request: Request) -> Response:
        if request.method == "GET":
            return self._status(request.path)
        verb = request.path.strip("/")
        if request.method != "POST" or verb not in ("filter", "prioritize"):
            return text_response(404, f"no {request.method} {request.path}\n")
        began = time.perf_counter()
        try:
            args = json.loads(request.body)
            if verb == "prioritize":
                answer: object = self.extender.prioritize(args)
            elif not self.extender.cache.synced:
                answer = {"Error": "modelplane extender: watches not synced yet"}
            else:
                answer = self.extender.filter(args)
            outcome = "ok"
        except (ValueError, KeyError, TypeError) as error:
            answer = {"Error": f"modelplane extender: bad request: {error}"}
            outcome = "error"
        SECONDS.labels(verb).observe(time.perf_counter() - began)
        CALLS.labels(verb, outcome).inc()
        return json_response(200, answer)

    def _status(self, path: str) -> Response:
        if path == "/metrics":
            return Response(200, generate_latest(), CONTENT_TYPE_LATEST)
        if path == "/healthz":
            return text_response(200, "ok\n")
        if path == "/readyz":
            synced = self.extender.cache.synced
            return text_response(200 if synced else 503, "ok\n" if synced else "not synced\n")
        return text_response(404, f"no {path}\n")


async def hold_lease(cache: Cache, elector: LeaderElector) -> None:
    """Once every watch has listed, freeze what was built out of the cyclic collector
    (the listed objects live until they change; the collector need not rescan them on
    every cycle), then hold the extension's Lease and keep renewing it."""
    await cache.wait_synced()
    gc.freeze()
    await elector.run()


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    kube = await Kube.connect(args.kubeconfig, "modelplane-scheduler-extender")
    cache = Cache(kube, PATHS)
    extender = Extender(cache)
    http = HttpServer(App(extender).handle)
    host, port = split_address(args.listen)
    await http.start(host, port)
    watching = asyncio.create_task(cache.run())
    namespace, name = SCHEDULER_EXTENDER_LEASE
    elector = LeaderElector(kube, namespace, name, f"{socket.gethostname()}-{os.getpid()}")
    leasing = asyncio.create_task(hold_lease(cache, elector))
    log.info("started", extra={"fields": {"listen": args.listen}})
    await stop.wait()
    leasing.cancel()
    try:
        await asyncio.wait_for(elector.release(), 2.0)
    except (*TRANSIENT, TimeoutError) as error:
        log.warning("could not release the lease", extra={"fields": {"error": str(error)}})
    watching.cancel()
    await http.shutdown(2.0)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        split_address(args.listen)
    except ValueError:
        print(f"error: --listen: expected HOST:PORT, got {args.listen!r}")
        return 2
    logs.configure(args.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(args, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
