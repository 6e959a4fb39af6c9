"""Steady traffic a user sends: `python -m e2e.sdk_load ADDRESS STOP_FILE [RPS]`.

Run inside the fleet's network namespace (through `modelplane localfleet exec`).
It starts one chat completion with the `openai` SDK (no retries; plain and
streaming in turn) every 1/RPS seconds (default 10 per second) against the
ModelService address, each on its own thread so a slow answer never delays the
next, until STOP_FILE exists. It prints `sending` when it starts, and at the
end one JSON object: how many were
sent, each failure as [seconds since start, what failed], and how many answers
each serving pod gave.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai

from e2e.sdk_client import _chat, _chat_stream, _record


def main(address: str, stop_file: Path, rps: float) -> dict[str, Any]:
    chat = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0, timeout=10)
    began = time.monotonic()
    results: list[tuple[float, list[Any]]] = []
    lock = threading.Lock()

    def one(index: int, at: float) -> None:
        record: list[list[Any]] = []
        _record(record, lambda: (_chat_stream if index % 2 else _chat)(chat))
        with lock:
            results.append((at - began, record[0]))

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
    for thread in threads:
        thread.join(15)
    failed = [[round(t, 2), r[2] if len(r) > 2 else "no content"] for t, r in results if not r[1]]
    pods = Counter(r[0] for _, r in results if r[1])
    return {"sent": index, "answered": len(results), "failed": sorted(failed), "pods": pods}


if __name__ == "__main__":
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]), rate)))
