"""Measures the prefill/decode router (`modelplane-pd-router`) against going to the engines.

Every engine is a simulator process (`python -m modelplane_enginesim`) on its own
loopback address; the router is a `python -m pd_router` process with the pods as
fixed lists. The load comes from this process (asyncio, kept-alive connections,
the router's own upstream client `pd_router.upstream.Upstream`). Three parts:

1. Added latency. Engines with no simulated latency; per body size (about 200 B,
   and 1 MB of prompt) and concurrency (1, 50), the same requests (a) straight to
   a decode engine vs through the router with prefill skipped (`decode only`), and
   (b) the client doing the hand-off itself (prefill call, then decode call with
   the returned `kv_transfer_params`) vs the router doing it (`prefill+decode`).
   Printed: p50/p99 of each and the difference of the p50s (the router's added
   time). The router's own decision time is read off its metrics histogram.
2. Time to first token on a shared-prefix workload: 2 prefill engines whose
   prefill costs `--prefill-ms-per-token` per token their prefix cache does not
   hold (a cache of `--cache-blocks` blocks each), `--documents` distinct
   documents of `--document-words` words, each request one random document plus
   its own question, streamed; prefix affinity vs round-robin prefill choice.
3. Requests/s on one core: the router pinned to CPU 0, engines with
   no latency, closed-loop concurrency 1, 2, 4, ... ; prints throughput, the
   router's added p50 (router p50 minus direct p50 at the same concurrency) and
   the router process's CPU time per request (user + system, from /proc: the
   figure that does not depend on what else the machine runs) at each level,
   and the last level whose added p50 stays under twice the one at
   concurrency 1.

`--router-workers N` runs every router with `--workers N` (CPU time then counts
the supervisor and its workers; part 3 pins them all to CPU 0). `--pin` pins
every router (and its workers) to CPU 0 and everything else (the engines, this
load generator) to CPU 1, in every part, so that the router has a core of its
own and the references (direct runs) the same core as in the routed runs.
Part 1's direct and routed runs of each row alternate in `ROUNDS` rounds, so a
change in what else the machine runs falls on both; each run's table prints
the load average beside it. Part 1 also times the router's reading of the
1 MB body's prompt in this process (`pd_router.prompt.read` against
`json.loads`).

It is a benchmark, not a test: it prints figures and never fails on them.

    .venv/bin/python tools/bench/pd_router_bench.py [--quick] [--part 1 2 3]
        [--router-workers N] [--pin] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pd_router import prompt
from pd_router.upstream import Upstream

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADERS = [(b"content-type", b"application/json")]
ROUTER_ARGS: list[str] = []
"""Flags every router of the run gets (`--router-workers`)."""
ROUTER_CPUS: set[int] = set()
"""With `--pin`: the CPUs every router is pinned to (the rest of the run has the others)."""
ROUNDS = 3
"""Part 1: each row's direct and routed runs alternate in this many rounds."""


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} never answered 200")


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def start_sim(host: str, role: str, *args: str) -> Proc:
    port = free_port(host)
    extra = ["--side-channel-port", str(free_port(host))] if role == "producer" else []
    process = subprocess.Popen(
        [sys.executable, "-m", "modelplane_enginesim", "--host", host, "--port", str(port),
         "--kv-role", role, "--max-concurrency", "256", "--max-model-len", "400000", *extra, *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_http(f"http://{host}:{port}/health")
    return Proc(process, host, port)


def start_router(prefill: Sequence[Proc], decode: Sequence[Proc], *args: str) -> tuple[Proc, str]:
    port, status = free_port("127.0.0.1"), free_port("127.0.0.1")
    command = [sys.executable, "-m", "pd_router", "--listen", f"127.0.0.1:{port}",
               "--status-address", f"127.0.0.1:{status}", "--log-level", "ERROR",
               "--prefill-pods", ",".join(p.address for p in prefill),
               "--decode-pods", ",".join(p.address for p in decode), *args,
               *ROUTER_ARGS]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status_url = f"http://127.0.0.1:{status}"
    wait_http(status_url + "/readyz")
    if ROUTER_CPUS:
        pin(process.pid, ROUTER_CPUS)
    return Proc(process, "127.0.0.1", port), status_url


def pin(pid: int, cpus: set[int]) -> None:
    """Pin a process and its children (a router's workers) to `cpus`."""
    for member in process_tree(pid):
        os.sched_setaffinity(member, cpus)


def stop(*procs: Proc) -> None:
    for proc in procs:
        proc.process.terminate()
    for proc in procs:
        try:
            proc.process.wait(5)
        except subprocess.TimeoutExpired:
            proc.process.kill()


def process_tree(pid: int) -> list[int]:
    """`pid` and its child processes (a router's workers), from /proc."""
    children: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listed:
            children.extend(int(child) for child in listed.read().split())
    return [pid, *children]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time so far of a process and its children (from /proc)."""
    total = 0
    for member in process_tree(pid):
        with open(f"/proc/{member}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_busy(cpu: int) -> tuple[float, float]:
    """Seconds CPU `cpu` has been busy (anything but idle and I/O wait), and seconds in all,
    so far, from /proc/stat: what every process on the machine took of it."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                # user nice system idle iowait irq softirq steal
                ticks = [int(t) for t in line.split()[1:9]]
                hz = os.sysconf("SC_CLK_TCK")
                return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def closed_loop(
    count: int, concurrency: int, one: Callable[[int], Awaitable[float]]
) -> tuple[list[float], float]:
    """Run `one(i)` for i < count with `concurrency` at a time; its latencies and the rate."""
    latencies: list[float] = []
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            latencies.append(await one(i))

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, count / (time.perf_counter() - began)


async def post(upstream: Upstream, path: bytes, body: bytes) -> bytes:
    exchange = await upstream.open(b"POST", path, HEADERS, [body])
    answer = await exchange.read()
    if exchange.status != 200:
        raise RuntimeError(f"{exchange.status}: {answer[:200]!r}")
    return answer


def body_of(prompt: str, **fields: Any) -> bytes:
    return json.dumps({"prompt": prompt, "max_tokens": 1, **fields}).encode()


def splice_params(body: bytes, params: Any) -> bytes:
    doc = json.loads(body)
    doc["kv_transfer_params"] = params
    return json.dumps(doc).encode()


PREFILL = {"do_remote_decode": True, "do_remote_prefill": False}


async def by_hand(prefill: Upstream, decode: Upstream, body: bytes) -> None:
    """The hand-off done by the client: what the router does, without the router."""
    doc = json.loads(body)
    doc.update(kv_transfer_params=PREFILL, max_tokens=1, stream=False)
    answer = json.loads(await post(prefill, b"/v1/completions", json.dumps(doc).encode()))
    await post(decode, b"/v1/completions", splice_params(body, answer["kv_transfer_params"]))


def metric_sum(status_url: str, name: str) -> float:
    with urllib.request.urlopen(status_url + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


Figures = dict[str, float]
"""One run of part 1: each row's added p50 (ms) by `<body> c<concurrency> <path>`, and the
routing decision p50 (ms) of the hand-off router under `decision`."""

GOALS = (
    ("routing decision p50 (prefill+decode)", "decision", 0.5),
    ("added time to first token p50, concurrency 1", "small c1 prefill+decode", 2.0),
    ("added time to first token p50, concurrency 50", "small c50 prefill+decode", 10.0),
    ("added p50 of 1 MB bodies, concurrency 50", "1 MB c50 decode only", 50.0),
)
"""Issue 16's goals: what, the figure, the bound (ms)."""


def histogram_p50(status_url: str, name: str) -> float:
    """The median of a router histogram, interpolated in its bucket as Prometheus's
    `histogram_quantile` does (ms)."""
    with urllib.request.urlopen(status_url + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= total / 2:
            if bound == float("inf"):
                return lower * 1000
            share = (total / 2 - below) / max(count - below, 1)
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, count
    return float("nan")


def print_goals(runs: Sequence[Figures]) -> None:
    """Each goal's figure per run, their median, and whether the median meets it."""
    print(f"\n## Issue 16's goals (median of {len(runs)} run(s) of part 1)\n")
    print("| goal | runs | median | bound | met |")
    print("|---|---|---|---|---|")
    for label, figure, bound in GOALS:
        values = [run[figure] for run in runs]
        median = sorted(values)[len(values) // 2]
        shown = ", ".join(f"{v:+.2f}" if figure != "decision" else f"{v:.3f}" for v in values)
        print(f"| {label} | {shown} ms | {median:.3f} ms | < {bound} ms | "
              f"{'yes' if median < bound else 'NO'} |")  # fmt: skip


async def part_overhead(quick: bool) -> Figures:
    print("## 1. Added latency (engines without simulated latency)")
    prefill = [start_sim("127.0.0.2", "producer", "--ttft-ms", "0", "--tpot-ms", "0")]
    decode = [start_sim("127.0.0.10", "consumer", "--ttft-ms", "0", "--tpot-ms", "0")]
    skip, skip_status = start_router(prefill, decode, "--min-prefill-chars", str(10**9))
    hand, hand_status = start_router(prefill, decode, "--min-prefill-chars", "1")
    figures: Figures = {}
    try:
        small = body_of(" ".join(f"w{i}" for i in range(20)))
        big = body_of(" ".join(f"w{i % 5000}" for i in range(150_000)))
        print(f"bodies: {len(small)} B and {len(big) / 1e6:.2f} MB")
        print_prompt_reading(big)
        print("| body | concurrency | path | direct p50 / p99 | router p50 / p99 | added p50 "
              "| router CPU / request | router busy | CPU busy | load |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        for label, body, counts in (("small", small, (300, 2000)), ("1 MB", big, (20, 100))):
            for concurrency, full in zip((1, 50), counts, strict=True):
                count = max(concurrency, full // 5) if quick else full
                hand_or_none = hand if label == "small" else None
                added = await _overhead_row(label, body, concurrency, count, prefill[0],
                                            decode[0], skip, hand_or_none)  # fmt: skip
                figures.update({f"{label} c{concurrency} {p}": a for p, a in added.items()})
        for name, url in (("decode only", skip_status), ("prefill+decode", hand_status)):
            total = metric_sum(url, "modelplane_pd_router_decision_seconds_sum")
            decisions = metric_sum(url, "modelplane_pd_router_decision_seconds_count")
            p50 = histogram_p50(url, "modelplane_pd_router_decision_seconds")
            print(f"\nrouting decision ({name}): mean {total / max(decisions, 1) * 1e3:.3f} ms, "
                  f"p50 {p50:.3f} ms")  # fmt: skip
        figures["decision"] = histogram_p50(hand_status, "modelplane_pd_router_decision_seconds")
    finally:
        stop(skip, hand, *prefill, *decode)
    return figures


def print_prompt_reading(body: bytes, times: int = 50) -> None:
    """How long the router takes to read `body`'s prompt (`pd_router.prompt.read`, what it
    does per request) against a full `json.loads`, in this process: medians of `times`."""

    def median_ms(action: Callable[[], object]) -> float:
        spent = []
        for _ in range(times):
            began = time.perf_counter()
            action()
            spent.append(time.perf_counter() - began)
        return sorted(spent)[times // 2] * 1000

    parse = median_ms(lambda: json.loads(body))
    read = getattr(prompt, "read", None)  # absent in a router from before the scanner
    scanned = median_ms(lambda: read(prompt.COMPLETIONS, body, 1024)) if read else float("nan")
    print(f"reading its prompt (median of {times}, load {os.getloadavg()[0]:.1f}): json.loads "
          f"{parse:.3f} ms, pd_router.prompt.read {scanned:.3f} ms\n")  # fmt: skip


async def _overhead_row(
    label: str, body: bytes, concurrency: int, count: int,
    prefill: Proc, decode: Proc, skip: Proc, hand: Proc | None,
) -> dict[str, float]:  # fmt: skip
    """One body size at one concurrency; the hand-off rows only with `hand` (small bodies:
    with 1 MB ones a single simulated prefill engine, not the router, is the bottleneck).
    Returns each path's added p50 (ms)."""
    figures: dict[str, float] = {}
    direct_decode = Upstream(decode.host, decode.port)
    direct_prefill = Upstream(prefill.host, prefill.port)
    via_skip = Upstream(skip.host, skip.port)
    via_hand = Upstream(hand.host, hand.port) if hand else via_skip

    async def timed(action: Awaitable[Any]) -> float:
        began = time.perf_counter()
        await action
        return time.perf_counter() - began

    rows = (
        ("decode only", skip,
         lambda _: timed(post(direct_decode, b"/v1/completions", body)),
         lambda _: timed(post(via_skip, b"/v1/completions", body))),
        ("prefill+decode", hand or skip,
         lambda _: timed(by_hand(direct_prefill, direct_decode, body)),
         lambda _: timed(post(via_hand, b"/v1/completions", body))),
    )  # fmt: skip
    share = max(concurrency, count // ROUNDS)
    for path, router, direct, routed in rows[: 2 if hand else 1]:
        await closed_loop(min(count, 20), concurrency, direct)  # warm the connections
        await closed_loop(min(count, 20), concurrency, routed)
        straight: list[float] = []
        through: list[float] = []
        cpu = wall = busy = total = 0.0
        core = min(ROUTER_CPUS or {0})
        for _ in range(ROUNDS):  # alternated, so a change of load falls on both
            straight += (await closed_loop(share, concurrency, direct))[0]
            before, began, core_before = cpu_seconds(router.process.pid), time.perf_counter(), \
                cpu_busy(core)  # fmt: skip
            through += (await closed_loop(share, concurrency, routed))[0]
            core_after = cpu_busy(core)
            cpu += cpu_seconds(router.process.pid) - before
            wall += time.perf_counter() - began
            busy += core_after[0] - core_before[0]
            total += core_after[1] - core_before[1]
        added = pct(through, 0.5) - pct(straight, 0.5)
        figures[path] = added
        print(f"| {label} | {concurrency} | {path} | {pct(straight, 0.5):.2f} / "
              f"{pct(straight, 0.99):.2f} ms | {pct(through, 0.5):.2f} / "
              f"{pct(through, 0.99):.2f} ms | {added:+.2f} ms | "
              f"{cpu / len(through) * 1000:.2f} ms | {cpu / wall:.0%} | "
              f"{busy / max(total, 1e-9):.0%} | {os.getloadavg()[0]:.1f} |")  # fmt: skip
    for upstream in (direct_decode, direct_prefill, via_skip, via_hand):
        upstream.close()
    return figures


async def ttft(upstream: Upstream, body: bytes) -> float:
    began = time.perf_counter()
    exchange = await upstream.open(b"POST", b"/v1/completions", HEADERS, [body])
    first = 0.0
    async for _chunk in exchange.chunks():
        if not first:
            first = time.perf_counter() - began
    if exchange.status != 200:
        raise RuntimeError(f"status {exchange.status}")
    return first


async def part_affinity(args: argparse.Namespace) -> None:
    print("\n## 2. Time to first token, shared-prefix workload: prefix affinity vs round-robin")
    words, docs = args.document_words, args.documents
    prefill_args = ("--ttft-ms", "5", "--tpot-ms", "0",
                    "--prefill-ms-per-token", str(args.prefill_ms_per_token),
                    "--prefix-cache-blocks", str(args.cache_blocks))  # fmt: skip
    print(f"{docs} documents of {words} words; 2 prefill engines, {args.prefill_ms_per_token} ms "
          f"per uncached token, prefix cache {args.cache_blocks} blocks of 16 each; "
          f"{args.requests} streamed requests, concurrency {args.concurrency}\n")  # fmt: skip
    documents = [" ".join(f"d{d}w{i}" for i in range(words)) for d in range(docs)]
    rng = random.Random(7)
    picks = [rng.randrange(docs) for _ in range(args.requests)]
    print("| prefill choice | TTFT p50 | TTFT p99 | prefix cache hit rate |")
    print("|---|---|---|---|")
    for policy in ("prefix", "round-robin"):
        prefill = [start_sim(f"127.0.0.{2 + i}", "producer", *prefill_args) for i in range(2)]
        decode = [start_sim("127.0.0.10", "consumer", "--ttft-ms", "5", "--tpot-ms", "2")]
        router, _ = start_router(prefill, decode, "--prefill-policy", policy)
        try:
            via = Upstream(router.host, router.port)

            def one(i: int, via: Upstream = via) -> Awaitable[float]:
                text = f"{documents[picks[i]]} question {i}: why?"
                return ttft(via, body_of(text, max_tokens=8, stream=True))

            latencies, _ = await closed_loop(args.requests, args.concurrency, one)
            via.close()
            hits = sum(_sim_metric(p, "vllm:prefix_cache_hits_total") for p in prefill)
            queries = sum(_sim_metric(p, "vllm:prefix_cache_queries_total") for p in prefill)
            print(f"| {policy} | {pct(latencies, 0.5):.1f} ms | {pct(latencies, 0.99):.1f} ms | "
                  f"{hits / max(queries, 1):.0%} |")  # fmt: skip
        finally:
            stop(router, *prefill, *decode)


def _sim_metric(proc: Proc, name: str) -> float:
    return metric_sum(f"http://{proc.address}", name)


async def part_throughput(quick: bool) -> None:
    print("\n## 3. Requests/s of the router on one core (CPU 0) before its added latency doubles")
    prefill = [start_sim("127.0.0.2", "producer", "--ttft-ms", "0", "--tpot-ms", "0")]
    decode = [start_sim(f"127.0.0.{10 + i}", "consumer", "--ttft-ms", "0", "--tpot-ms", "0")
              for i in range(2)]  # fmt: skip
    router, _ = start_router(prefill, decode, "--min-prefill-chars", str(10**9))
    pin(router.process.pid, ROUTER_CPUS or {0})
    body = body_of(" ".join(f"w{i}" for i in range(20)))
    print(
        "decode-only requests (small body); direct = the same requests to the 2 decode "
        "engines in turn\n"
    )
    print(
        "| concurrency | router req/s | router p50 | direct p50 | added p50 | router CPU/request |"
    )
    print("|---|---|---|---|---|---|")
    try:
        baseline = 0.0
        best: tuple[int, float] = (0, 0.0)
        for concurrency in (1, 2, 4, 8, 16, 32, 64):
            count = max(200, concurrency * (20 if quick else 60))
            via = [Upstream(router.host, router.port)]
            direct = [Upstream(d.host, d.port) for d in decode]

            async def routed(_: int, via: list[Upstream] = via) -> float:
                began = time.perf_counter()
                await post(via[0], b"/v1/completions", body)
                return time.perf_counter() - began

            async def straight(i: int, direct: list[Upstream] = direct) -> float:
                began = time.perf_counter()
                await post(direct[i % 2], b"/v1/completions", body)
                return time.perf_counter() - began

            await closed_loop(concurrency * 4, concurrency, routed)
            await closed_loop(concurrency * 4, concurrency, straight)
            cpu = cpu_seconds(router.process.pid)
            through, rate = await closed_loop(count, concurrency, routed)
            cpu = (cpu_seconds(router.process.pid) - cpu) / count
            plain, _ = await closed_loop(count, concurrency, straight)
            added = pct(through, 0.5) - pct(plain, 0.5)
            baseline = baseline or max(added, 0.01)
            if added <= 2 * baseline:
                best = (concurrency, rate)
            print(f"| {concurrency} | {rate:.0f} | {pct(through, 0.5):.2f} ms | "
                  f"{pct(plain, 0.5):.2f} ms | {added:+.2f} ms | {cpu * 1e3:.2f} ms |")  # fmt: skip
            for upstream in via + direct:
                upstream.close()
        print(f"\nadded p50 at concurrency 1: {baseline:.2f} ms; last level under twice that: "
              f"concurrency {best[0]}, {best[1]:.0f} requests/s")  # fmt: skip
    finally:
        stop(router, *prefill, *decode)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer requests")
    p.add_argument("--part", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--documents", type=int, default=24)
    p.add_argument("--document-words", type=int, default=1600)
    p.add_argument("--prefill-ms-per-token", type=float, default=0.1)
    p.add_argument("--cache-blocks", type=int, default=1400)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--runs", type=int, default=1, help="runs of part 1 (goals: their median)")
    p.add_argument("--router-workers", type=int, default=1, help="the routers' --workers")
    p.add_argument("--pin", action="store_true",
                   help="routers on CPU 0, the engines and this process on CPU 1")  # fmt: skip
    args = p.parse_args()
    if args.pin:
        if not {0, 1} <= os.sched_getaffinity(0):
            p.error("--pin needs CPUs 0 and 1")
        ROUTER_CPUS.add(0)
        os.sched_setaffinity(0, {1})  # the engines started from here inherit it
    if args.router_workers > 1:
        ROUTER_ARGS.extend(["--workers", str(args.router_workers)])
    load = os.getloadavg()[0]
    print(f"# pd-router benchmark ({os.cpu_count()} CPUs, load average {load:.1f} at start, "
          f"router workers {args.router_workers}, "
          f"{'routers on CPU 0, the rest on CPU 1' if args.pin else 'not pinned'})\n")  # fmt: skip
    if 1 in args.part:
        runs = []
        for run in range(args.runs):
            if args.runs > 1:
                print(f"### run {run + 1} of {args.runs} (load average {os.getloadavg()[0]:.1f})")
            runs.append(asyncio.run(part_overhead(args.quick)))
        print_goals(runs)
    if 2 in args.part:
        asyncio.run(part_affinity(args))
    if 3 in args.part:
        asyncio.run(part_throughput(args.quick))


if __name__ == "__main__":
    main()
