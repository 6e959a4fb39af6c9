"""The getting-started tour's figures, as medians over fresh fleets (needs root).

    sudo .venv/bin/python tools/bench/tour_bench.py --runs 3

Each run walks `modelplane up --tour` in-process on a new fleet, then measures:
- `first_answer_s`: `kubectl apply` of qwen-demo to its first 200 through the
  ModelService, and `engine_ready_s`: its engine pod from created to Ready
  (Kubernetes timestamps, whole seconds), the simulated engine's share;
- `rss_mib`: each service's resident memory at the end of the tour;
- gateway overhead: `--streams` streaming chat completions, `--concurrency` at a
  time, once directly to a qwen-demo engine pod and once through the service
  address (control gateway, then the cluster's gateway): time to the first
  token and to the end, p50 and p99, and the difference; then the same with 100
  streams one at a time (`_single`), the proxies' own cost without the 2-core
  machine's CPU contention between client, engines and both Traefiks;
- abrupt loss: with 10 requests/s on the service, `stop` the cluster us-west
  (qwen-west runs there; qwen-demo keeps serving from us-east): how many
  requests failed and the window from the first failure to the last.
It prints one JSON object per run and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from modelplane_localfleet import services
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.layout import CONTROL
from modelplane_localfleet.process import running
from modelplane_localfleet.tour import Tour

BODY = {"model": "qwen", "messages": [{"role": "user", "content": "Tell me more"}],
        "max_tokens": 16, "stream": True}  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mib(fleet: Fleet) -> dict[str, float]:
    control = fleet.cluster(CONTROL)
    out = {}
    for service in services.SERVICES:
        record = running(control.record_path(service))
        if record is None:
            continue
        for line in Path(f"/proc/{record.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out[service] = round(int(line.split()[1]) / 1024, 1)
    return out


async def streams(url: str, count: int, concurrency: int) -> dict[str, float]:
    first: list[float] = []
    total: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def one() -> None:
            async with gate:
                began = time.perf_counter()
                seen_first = None
                async with client.stream("POST", url, json=BODY) as reply:
                    reply.raise_for_status()
                    async for line in reply.aiter_lines():
                        if seen_first is None and line.startswith("data:"):
                            seen_first = time.perf_counter() - began
                total.append(time.perf_counter() - began)
                first.append(seen_first or total[-1])

        await asyncio.gather(*(one() for _ in range(count)))
    ms = 1000.0
    return {
        "ttft_p50_ms": percentile(first, 0.5) * ms,
        "ttft_p99_ms": percentile(first, 0.99) * ms,
        "total_p50_ms": percentile(total, 0.5) * ms,
        "total_p99_ms": percentile(total, 0.99) * ms,
    }


def engine_pod_url(fleet: Fleet) -> str:
    east = fleet.cluster("us-east")
    done = east.kubectl("get", "pods", "-n", "ml-team", "-o", "json")
    pods = [p for p in json.loads(done.stdout)["items"] if p["status"].get("podIP")]
    return f"http://{pods[0]['status']['podIP']}:8000/v1/chat/completions"


def abrupt_loss(fleet: Fleet, address: str, seconds: float = 30) -> dict[str, float]:
    failures: list[float] = []
    sent = [0]
    stop = threading.Event()

    def ask() -> None:
        with httpx.Client(timeout=5, trust_env=False) as client:
            while not stop.is_set():
                at = time.monotonic()
                try:
                    ok = client.post(
                        f"{address}/v1/chat/completions", json={**BODY, "stream": False}
                    )
                    failed = ok.status_code != 200
                except httpx.HTTPError:
                    failed = True
                sent[0] += 1
                if failed:
                    failures.append(at)
                time.sleep(max(0.0, 0.1 - (time.monotonic() - at)))

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    time.sleep(3)
    fleet.stop("us-west")
    time.sleep(seconds)
    stop.set()
    asker.join(10)
    window = failures[-1] - failures[0] if failures else 0.0
    return {"requests": sent[0], "failed": len(failures), "window_s": round(window, 2)}


def one_run(work: Path, stream_count: int, concurrency: int) -> dict[str, Any]:
    fleet = Fleet(work / "state")
    try:
        tour = Tour(fleet, say=lambda _: None)
        address = tour.run()
        result: dict[str, Any] = dict(tour.timings)
        result["rss_mib"] = rss_mib(fleet)
        for key, count, at_once in (("", stream_count, concurrency), ("_single", 100, 1)):
            direct = asyncio.run(streams(engine_pod_url(fleet), count, at_once))
            through = asyncio.run(streams(f"{address}/v1/chat/completions", count, at_once))
            result[f"direct{key}"] = direct
            result[f"through_gateways{key}"] = through
            result[f"added_ms{key}"] = {k: round(through[k] - direct[k], 1) for k in direct}
        result["abrupt_loss"] = abrupt_loss(fleet, address)
        return result
    finally:
        fleet.down(purge=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    runs = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="tour-bench-") as work:
            result = one_run(Path(work), args.streams, args.concurrency)
        print(json.dumps({"run": index, **result}), flush=True)
        runs.append(result)

    def median(get: Any) -> float:
        return round(float(statistics.median(get(r) for r in runs)), 2)

    summary = {
        "first_answer_s": median(lambda r: r["first_answer_s"]),
        "engine_ready_s": median(lambda r: r["engine_ready_s"]),
        "added_ttft_p50_ms": median(lambda r: r["added_ms"]["ttft_p50_ms"]),
        "added_ttft_p99_ms": median(lambda r: r["added_ms"]["ttft_p99_ms"]),
        "added_total_p50_ms": median(lambda r: r["added_ms"]["total_p50_ms"]),
        "added_total_p99_ms": median(lambda r: r["added_ms"]["total_p99_ms"]),
        "direct_ttft_p50_ms": median(lambda r: r["direct"]["ttft_p50_ms"]),
        "single_added_ttft_p50_ms": median(lambda r: r["added_ms_single"]["ttft_p50_ms"]),
        "single_added_ttft_p99_ms": median(lambda r: r["added_ms_single"]["ttft_p99_ms"]),
        "loss_window_s": median(lambda r: r["abrupt_loss"]["window_s"]),
        "loss_failed": median(lambda r: r["abrupt_loss"]["failed"]),
        "rss_mib": {s: median(lambda r, s=s: r["rss_mib"].get(s, 0.0)) for s in services.SERVICES},
    }
    print("medians:", json.dumps(summary), file=sys.stdout)


if __name__ == "__main__":
    main()
