"""Steady traffic a user sends: `python -m e2e.sdk_load ADDRESS STOP_FILE [RPS] [options]`.

Run inside the fleet's network namespace (through `modelplane localfleet exec`, or
from a process already there). It starts one chat completion with the `openai` SDK
(no retries) every 1/RPS seconds (default 10 per second) against the ModelService
address, each on its own thread so a slow answer never delays the next (open loop),
until STOP_FILE exists. Every `--stream-every`-th request (default 2: plain and
streaming in turn) is streamed. `--max-tokens N` (default 8) with `--exact` asks the
engine for exactly N tokens (vLLM's `ignore_eos`) and counts an answer only when its
usage says all N came; `--timeout` (default 10 s) bounds each request.

It prints `sending` when it starts, and at the end one JSON object: how many were
sent and over how many seconds, each failure as [seconds since start, what failed],
how many answers each serving pod gave, and the latency of the answered requests
(`latency_s`: p50, p99, max).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai

from e2e.sdk_client import _chat, _chat_stream, _record


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def main(
    address: str,
    stop_file: Path,
    rps: float,
    *,
    max_tokens: int = 8,
    exact: bool = False,
    stream_every: int = 2,
    timeout: float = 10,
) -> dict[str, Any]:
    chat = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0, timeout=timeout)
    began = time.monotonic()
    results: list[tuple[float, float, list[Any]]] = []
    lock = threading.Lock()

    def one(index: int, at: float) -> None:
        record: list[list[Any]] = []
        call = _chat_stream if index % stream_every == stream_every - 1 else _chat
        _record(record, lambda: call(chat, max_tokens, exact))
        with lock:
            results.append((at - began, time.monotonic() - at, record[0]))

    threads = []
    index = 0
    print("sending", flush=True)
    while not stop_file.exists():
        at = began + index / rps
        time.sleep(max(0.0, at - time.monotonic()))
        thread = threading.Thread(target=one, args=(index, time.monotonic()))
        thread.start()
        threads.append(thread)
        index += 1
    sending = time.monotonic() - began
    for thread in threads:
        thread.join(timeout + 5)
    failed = [
        [round(t, 2), r[2] if len(r) > 2 else "no content"] for t, _, r in results if not r[1]
    ]
    pods = Counter(r[0] for _, _, r in results if r[1])
    latencies = [took for _, took, r in results if r[1]]
    latency = (
        {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
         "max": max(latencies)}
        if latencies else {}
    )  # fmt: skip
    return {
        "sent": index,
        "seconds": round(sending, 2),
        "answered": len(results),
        "failed": sorted(failed),
        "pods": pods,
        "latency_s": {k: round(v, 3) for k, v in latency.items()},
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m e2e.sdk_load")
    parser.add_argument("address", help="the ModelService's address (status.address)")
    parser.add_argument("stop_file", type=Path, help="sending stops once this file exists")
    parser.add_argument("rps", type=float, nargs="?", default=10.0, help="requests a second")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--exact", action="store_true", help="exactly --max-tokens tokens")
    parser.add_argument("--stream-every", type=int, default=2, help="every Nth is streamed")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    return parser.parse_args()


if __name__ == "__main__":
    given = arguments()
    outcome = main(
        given.address, given.stop_file, given.rps, max_tokens=given.max_tokens,
        exact=given.exact, stream_every=given.stream_every, timeout=given.timeout,
    )  # fmt: skip
    print(json.dumps(outcome))
