"""Latency of the scheduler extender's calls, as kube-scheduler makes them.

Runs `modelplane-scheduler-extender`'s HTTP app in this process on loopback with an
in-memory stand-in for its watch cache (N nodes of 8 GPUs, every other node half
used), then sends `filter` and `prioritize` calls for a pod claiming 2 GPUs over one
kept-alive connection, as kube-scheduler's HTTP client does (the pod's template
is in the cache; `NodeNames`, nodeCacheCapable). Prints p50/p99 per verb and node
count over `--calls` calls each, after a warm-up, as wall time and as this process's
CPU time (client and server together; less bent than wall time by a loaded machine's
scheduling). With `--gc-freeze` the objects built so far are first frozen out of the
cyclic collector (`gc.freeze()`). A benchmark: prints, never fails on figures.

    .venv/bin/python tools/bench/extender_bench.py [--nodes 10 100] [--calls 2000] [--gc-freeze]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import statistics
import threading
import time
from typing import Any

from modelplane.httpserver import HttpServer
from scheduler_extender.__main__ import App
from scheduler_extender.extender import CLAIMS, CLASSES, SLICES, TEMPLATES, Extender


class MemoryCache:
    """The extender's watch cache, filled once (no API server)."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.listeners: list[Any] = []
        self.synced = True

    def items(self, path: str) -> list[dict[str, Any]]:
        return self.objects[path]


def cluster(nodes: int) -> dict[str, list[dict[str, Any]]]:
    slices, claims = [], []
    for n in range(nodes):
        node = f"node-{n:03d}"
        slices.append({
            "metadata": {"name": f"{node}-gpu"},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": node, "pool": {"name": node},
                     "devices": [{"name": f"gpu-{i}",
                                  "attributes": {"architecture": {"string": "Hopper"}}}
                                 for i in range(8)]},
        })  # fmt: skip
        if n % 2:
            results = [{"request": "gpu", "driver": "gpu.nvidia.com", "pool": node,
                        "device": f"gpu-{i}"} for i in range(4)]  # fmt: skip
            allocation = {"devices": {"results": results}}
            claims.append({"metadata": {"name": f"c{n}", "namespace": "ml"},
                           "status": {"allocation": allocation}})  # fmt: skip
    hopper = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
    template = {"metadata": {"name": "two", "namespace": "ml"},
                "spec": {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
                    "deviceClassName": "gpu.nvidia.com", "count": 2,
                    "selectors": [{"cel": {"expression": hopper}}]}}]}}}}  # fmt: skip
    device_class = {"metadata": {"name": "gpu.nvidia.com"},
                    "spec": {"selectors": [{"cel": {"expression":
                        'device.driver == "gpu.nvidia.com"'}}]}}  # fmt: skip
    return {SLICES: slices, CLAIMS: claims, TEMPLATES: [template], CLASSES: [device_class]}


def serve(extender: Extender) -> int:
    ready: list[int] = []
    started = threading.Event()

    def run() -> None:
        async def main() -> None:
            server = HttpServer(App(extender).handle)
            ready.append(await server.start("127.0.0.1", 0))
            started.set()
            await asyncio.Event().wait()

        asyncio.run(main())

    threading.Thread(target=run, daemon=True).start()
    started.wait(10)
    return ready[0]


def measure(nodes: int, calls: int, freeze: bool = False) -> dict[str, list[float]]:
    objects = cluster(nodes)
    extender = Extender(MemoryCache(objects))
    port = serve(extender)
    if freeze:
        gc.freeze()
    connection = http.client.HTTPConnection("127.0.0.1", port)
    names = [s["spec"]["nodeName"] for s in objects[SLICES]]
    timings: dict[str, list[float]] = {
        "filter": [],
        "prioritize": [],
        "filter cpu": [],
        "prioritize cpu": [],
    }
    for i in range(calls + 200):
        claims = [{"name": "gpu", "resourceClaimTemplateName": "two"}]
        pod = {"metadata": {"name": f"p{i}", "namespace": "ml", "uid": f"u{i}"},
               "spec": {"resourceClaims": claims}}  # fmt: skip
        body = json.dumps({"Pod": pod, "NodeNames": names})
        for verb in ("filter", "prioritize"):
            began, cpu = time.perf_counter(), time.process_time()
            connection.request("POST", f"/{verb}", body, {"Content-Type": "application/json"})
            reply = connection.getresponse()
            reply.read()
            took, cpu_took = time.perf_counter() - began, time.process_time() - cpu
            if i >= 200:
                timings[verb].append(took)
                timings[f"{verb} cpu"].append(cpu_took)
        extender.pending.clear()  # every call a fresh pod on the same cluster state
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before measuring")
    args = parser.parse_args()
    print(f"{'nodes':>6} {'verb':<11} {'p50 ms':>8} {'p99 ms':>8}")
    for nodes in args.nodes:
        for verb, samples in measure(nodes, args.calls, args.gc_freeze).items():
            cuts = statistics.quantiles(samples, n=100)
            print(f"{nodes:>6} {verb:<11} {cuts[49] * 1000:>8.2f} {cuts[98] * 1000:>8.2f}")


if __name__ == "__main__":
    main()
