"""Measures the engine simulator: idle memory, start time, and requests per second.

Starts N idle simulators one after another (each `python -m modelplane_enginesim
--port 0`, as the node agent starts one per pod), timing each from the spawn to
its first `/health` 200; once all are up and idle, reads every process's
resident (RSS) and proportional (PSS, shared pages split between the processes
sharing them) set size from /proc/PID/smaps_rollup. Then one more simulator with
no latency (ttft 0, tpot 0) takes a closed-loop load: C clients on kept-alive
connections, each sending a non-streaming chat completion as soon as the
previous one is answered, for S seconds. Prints medians and maxima; it is a
benchmark, not a test: it never fails on the figures.

    .venv/bin/python tools/bench/enginesim_bench.py [--count 20] [--seconds 5] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

MIB = 1 << 20
HOST = "127.0.0.1"
CHAT = json.dumps(
    {
        "model": "simulated-model",
        "messages": [{"role": "user", "content": "measure the simulator please"}],
        "max_tokens": 16,
    }
).encode()


class Simulator:
    def __init__(self, *args: str) -> None:
        self.began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelplane_enginesim", "--host", HOST, "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            match = re.search(r"event=listening .* port=(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        else:
            raise RuntimeError(f"simulator exited with {self.process.wait()} before listening")
        # Stop reading stderr: an idle simulator logs nothing more.
        while not self._healthy():
            time.sleep(0.002)
        self.ready_s = time.monotonic() - self.began

    def _healthy(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def memory(self) -> tuple[int, int]:
        """(RSS, PSS) in bytes."""
        rss = pss = 0
        for line in Path(f"/proc/{self.process.pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
        return rss, pss

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def _client(port: int, deadline: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(CHAT)).encode() + b"\r\n\r\n" + CHAT
    )
    done = 0
    while time.monotonic() < deadline:
        sent = time.monotonic()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(head.decode(errors="replace"))
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        latencies.append(time.monotonic() - sent)
        done += 1
    writer.close()
    return done


async def _load(port: int, clients: int, seconds: float) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    began = time.monotonic()
    counts = await asyncio.gather(
        *(_client(port, began + seconds, latencies) for _ in range(clients))
    )
    return sum(counts), time.monotonic() - began, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="idle simulators to start")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before memory")
    args = parser.parse_args()

    sims: list[Simulator] = []
    try:
        for _ in range(args.count):
            sims.append(Simulator())
        time.sleep(args.settle)
        memory = [s.memory() for s in sims]
        rss = [m[0] / MIB for m in memory]
        pss = [m[1] / MIB for m in memory]
        ready = [s.ready_s * 1000 for s in sims]
        print(f"{args.count} idle simulators, one after another:")
        for label, values, digits in (
            ("start to /health 200 ms", ready, 0),
            ("RSS MiB", rss, 1),
            ("PSS MiB", pss, 1),
        ):
            median = statistics.median(values)
            print(f"  {label:24} median {median:.{digits}f}  max {max(values):.{digits}f}")
        print(f"  all {args.count} together:        PSS {sum(pss):.0f} MiB")
    finally:
        for s in sims:
            s.stop()

    target = Simulator("--ttft-ms", "0", "--tpot-ms", "0")
    try:
        done, elapsed, latencies = asyncio.run(_load(target.port, args.clients, args.seconds))
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        loaded_rss, _ = target.memory()
        print(
            f"closed loop, {args.clients} clients, non-streaming chat (16 tokens, ttft 0, tpot 0):"
        )
        print(f"  {done / elapsed:,.0f} requests/s over {elapsed:.1f}s ({done:,} requests)")
        print(f"  latency ms: p50 {p50:.1f}  p99 {p99:.1f}")
        print(f"  RSS after the load: {loaded_rss / MIB:.1f} MiB")
    finally:
        target.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
