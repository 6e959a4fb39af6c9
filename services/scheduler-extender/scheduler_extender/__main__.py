"""`modelplane-scheduler-extender` (or `python -m scheduler_extender`): run the extender.

Serves `POST /filter` and `POST /prioritize` (kube-scheduler's extender protocol)
and `/healthz`, `/readyz` (ready once every watch has listed) and `/metrics` on
`--listen`, from watches of the cluster's DRA objects, until SIGTERM or SIGINT.
Before its watches have listed, `filter` answers with an `Error`, so a scheduler
whose extender is not `ignorable` retries the pod instead of binding it blind.
Exit status 2 when the command line is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time

from modelplane import logs
from modelplane.cache import Cache
from modelplane.httpserver import HttpServer, Request, Response, json_response, text_response
from modelplane.kube import Kube
from modelplane.service import split_address
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


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    kube = await Kube.connect(args.kubeconfig, "modelplane-scheduler-extender")
    cache = Cache(kube, PATHS)
    extender = Extender(cache)
    http = HttpServer(App(extender).handle)
    host, port = split_address(args.listen)
    await http.start(host, port)
    watching = asyncio.create_task(cache.run())
    log.info("started", extra={"fields": {"listen": args.listen}})
    await stop.wait()
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
