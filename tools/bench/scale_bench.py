"""Measures the control plane's services with 1,000 ModelDeployments on a live local fleet.

Each run brings up a fresh fleet of `e2e/fleet.yaml` (control, east, west),
applies its classes and clusters, starts the four services as the fleet runs
them (`modelplane_localfleet.services.service_argv`: own identities, mutual
TLS), waits for their `/readyz` and both clusters Ready, then:

1. settle: applies `--deployments` ModelDeployments in one `kubectl apply
   --server-side` (a mix of one to four GPUs per member, memory floors of 20 to
   160 GiB; half at replicas 0, most others unschedulable, a few placed), and
   times from its return until every one has its status for its generation;
2. at rest: after `--settle-s`, reads each service's `/metrics` twice,
   `--rest-s` apart, and turns `modelplane_api_requests_total` into requests
   per minute, watches (method WATCH) left out, split into the leader's Lease
   (resource `leases`), everything else to the control cluster, and requests
   to the inference clusters; reads each service's resident memory (VmRSS)
   from /proc; its peak is the highest VmRSS or VmHWM sampled every 250 ms
   from the services' start to the end of the run; counts the InferenceClusters
   whose status changed in the window (each change rewrites deployments' status);
3. one more: `--more` times, applies one more placeable deployment and times
   from `kubectl apply` returning until its status is written for its
   generation and its ModelReplica exists (polled every 20 ms), with the
   fleet-scheduler's passes meanwhile (`modelplane_queue_work_duration_seconds`);
   before the next, waits for this one to serve (at most 3 minutes), so each is
   timed at rest rather than beside a starting engine.

Prints each run and min/median/max over `--runs`. Needs root, like the fleet.

    .venv/bin/python tools/bench/scale_bench.py [--runs 3] [--deployments 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelplane.kube import Kube
from modelplane.naming import DEPLOYMENT_LABEL
from modelplane.wellknown import API
from modelplane_localfleet import services
from modelplane_localfleet.cluster import Cluster
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench.benchfleet import fleet_in
from tools.bench.controlplane_bench import answers, ready_status, wait

ROOT = Path(__file__).resolve().parents[2]
FLEET_FILE = ROOT / "e2e" / "fleet.yaml"
NAMESPACE = "bench"
FLOORS = ("20Gi", "40Gi", "80Gi", "160Gi")
"""GPU memory floors: the fleet has L4s (22.5 GiB) and H100s (79.6 GiB), nothing of 160."""
PLACED_EVERY = 500
"""One deployment in this many gets a replica that fits (the fleet has eight GPUs)."""


def deployment(name: str, replicas: int, gpus: int, floor: str) -> dict[str, Any]:
    selector = f'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("{floor}")) >= 0'
    member = {
        "role": "Standalone",
        "nodeSelector": {
            "devices": [{"name": "gpu", "count": gpus, "selectors": [{"cel": selector}]}]
        },
        "template": {"spec": {"containers": [{"name": "e", "image": "vllm/vllm-openai:v0.23.0"}]}},
    }
    return {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"replicas": replicas, "engines": [{"name": "e", "members": [member]}]},
    }  # fmt: skip


def mix(count: int) -> list[dict[str, Any]]:
    """`count` deployments: every `PLACED_EVERY`th placeable (one L4-sized GPU), the
    other even ones at replicas 0, the odd ones wanting 1-3 replicas of more GPUs per
    node (4) or more memory (160 GiB) than any node has."""
    out = []
    for i in range(count):
        if i % PLACED_EVERY == 0:
            out.append(deployment(f"md-{i}", 1, 1, FLOORS[0]))
        elif i % 2 == 0:
            out.append(deployment(f"md-{i}", 0, 1 + i % 4, FLOORS[i % 4]))
        elif i % 4 == 1:
            out.append(deployment(f"md-{i}", 1 + i % 3, 4, FLOORS[i % 3]))
        else:
            out.append(deployment(f"md-{i}", 1 + i % 3, 1 + i % 2, FLOORS[3]))
    return out


def proc_mib(pid: int, field_name: str) -> float:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


Counts = dict[tuple[str, str, str], float]
"""`modelplane_api_requests_total` by (server, method, resource)."""


def requests(url: str) -> Counts:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    out: Counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "modelplane_api_requests_total":
                labels = sample.labels
                key = (labels["server"], labels["method"], labels.get("resource", ""))
                out[key] = out.get(key, 0.0) + sample.value
    return out


def work_done(url: str) -> tuple[float, float]:
    """(seconds, count) of `modelplane_queue_work_duration_seconds` at `url`."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    totals = {"_sum": 0.0, "_count": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for suffix in totals:
                if sample.name == f"modelplane_queue_work_duration_seconds{suffix}":
                    totals[suffix] += sample.value
    return totals["_sum"], totals["_count"]


@dataclass(frozen=True)
class Rates:
    """Requests per minute at rest, watches left out."""

    lease: float
    """leader election's Lease, on the control cluster"""
    other: float
    """every other request to the control cluster"""
    remote: float
    """requests to the inference clusters' API servers"""
    detail: dict[str, float]
    """each non-zero (server, method, resource) but the Lease"""


def per_minute(before: Counts, after: Counts, seconds: float, control: str) -> Rates:
    rate = {k: (v - before.get(k, 0.0)) * 60 / seconds for k, v in after.items() if k[1] != "WATCH"}
    lease = sum(v for (server, _, res), v in rate.items() if server == control and res == "leases")
    other = sum(v for (server, _, res), v in rate.items() if server == control and res != "leases")
    remote = sum(v for (server, _, _), v in rate.items() if server != control)
    detail = {
        " ".join(key): v
        for key, v in rate.items()
        if v and not (key[0] == control and key[2] == "leases")
    }
    return Rates(lease, other, remote, detail)


class PeakSampler:
    """The highest VmRSS of some processes, sampled every `every_s` in a thread
    (VmHWM alone lags: the kernel updates it lazily)."""

    def __init__(self, pids: dict[str, int], every_s: float = 0.25) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self.every_s = every_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(self.every_s):
            self.take()

    def take(self) -> None:
        for name, pid in self.pids.items():
            now = max(proc_mib(pid, "VmRSS"), proc_mib(pid, "VmHWM"))
            self.peak[name] = max(self.peak[name], now)


def status_done(md: dict[str, Any]) -> bool:
    observed = (md.get("status") or {}).get("observedGeneration")
    return observed is not None and observed == md["metadata"].get("generation")


@dataclass
class Run:
    settle_s: float = 0.0
    apply_s: float = 0.0
    more_s: list[float] = field(default_factory=list)
    more_passes: list[tuple[int, float]] = field(default_factory=list)
    """per one-more sample: fleet-scheduler passes until placed, their mean seconds"""
    rss_mib: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    rates: dict[str, Rates] = field(default_factory=dict)
    clusters_changed_at_rest: int = 0
    """InferenceClusters whose status changed in the at-rest window (e.g. one judged lost
    on a loaded machine): each change re-writes deployments' status"""


async def until(check: Callable[[], Awaitable[bool]], every_s: float, timeout_s: float) -> float:
    """Poll `check` until it holds; the monotonic time it first held."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(every_s)
    return time.monotonic()


def start_services(control: Cluster, work: Path) -> dict[str, subprocess.Popen[bytes]]:
    address = control.plan.address
    started = {}
    for service in services.SERVICES:
        argv = services.service_argv(service, sys.executable, control.config_dir, address)
        log = (work / f"{service}.log").open("w")
        started[service] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    return started


def metrics_url(control: Cluster, service: str) -> str:
    return f"http://{control.plan.address}:{services.STATUS_PORTS[service]}/metrics"


async def measure(
    control: Cluster, running: dict[str, subprocess.Popen[bytes]], args: argparse.Namespace
) -> Run:
    run = Run()
    kube = await Kube.connect(str(control.kubeconfig_path), "scale-bench")
    collection = f"{API}/namespaces/{NAMESPACE}/modeldeployments"
    stream = "\n".join(json.dumps(d) for d in mix(args.deployments))
    began = time.monotonic()
    control.kubectl("apply", "--server-side", "-f", "-", stdin=stream, timeout=1800)
    applied = time.monotonic()
    run.apply_s = applied - began

    async def all_have_status() -> bool:
        items = ((await kube.get(collection)) or {}).get("items") or []
        return len(items) >= args.deployments and all(status_done(md) for md in items)

    run.settle_s = await until(all_have_status, 0.5, 1800) - applied

    async def cluster_versions() -> set[str]:
        listing = (await kube.get(f"{API}/inferenceclusters")) or {}
        return {c["metadata"]["resourceVersion"] for c in listing.get("items") or []}

    await asyncio.sleep(args.settle_s)
    before = {s: requests(metrics_url(control, s)) for s in running}
    clusters = await cluster_versions()
    rest_began = time.monotonic()
    await asyncio.sleep(args.rest_s)
    after = {s: requests(metrics_url(control, s)) for s in running}
    rested = time.monotonic() - rest_began
    run.clusters_changed_at_rest = len(await cluster_versions() - clusters)
    server = f"https://{control.plan.address}:6443"
    for service, process in running.items():
        run.rates[service] = per_minute(before[service], after[service], rested, server)
        run.rss_mib[service] = proc_mib(process.pid, "VmRSS")

    for i in range(args.more):
        name = f"one-more-{i}"

        async def placed(name: str = name) -> bool:
            md = await kube.get(f"{collection}/{name}")
            if md is None or not status_done(md):
                return False
            replicas = await kube.get(
                f"{API}/namespaces/{NAMESPACE}/modelreplicas",
                {"labelSelector": f"{DEPLOYMENT_LABEL}={name}"},
            )
            return bool((replicas or {}).get("items"))

        async def serving(name: str = name) -> bool:
            md = await kube.get(f"{collection}/{name}")
            return bool(((md or {}).get("status") or {}).get("readyReplicas"))

        passes = work_done(metrics_url(control, "fleet-scheduler"))
        control.kubectl(
            "apply", "--server-side", "-f", "-",
            stdin=json.dumps(deployment(name, 1, 1, FLOORS[0])),
        )  # fmt: skip
        applied = time.monotonic()
        run.more_s.append(await until(placed, 0.02, 120) - applied)
        done = work_done(metrics_url(control, "fleet-scheduler"))
        took, count = done[0] - passes[0], done[1] - passes[1]
        run.more_passes.append((int(count), took / count if count else 0.0))
        # the next one is timed at rest again: once this replica serves (its engine
        # starting takes the machine's CPU for a while), or after 3 minutes
        with contextlib.suppress(TimeoutError):
            await until(serving, 0.5, 180)
    return run


def one_run(work: Path, args: argparse.Namespace) -> Run:
    with fleet_in(work, FLEET_FILE) as fleet:
        control = fleet.cluster("control")
        control.kubectl("apply", "-f", str(FLEET_FILE))
        control.kubectl("create", "namespace", NAMESPACE)
        running = start_services(control, work)
        try:
            address = control.plan.address
            wait(
                lambda: all(
                    answers(f"http://{address}:{services.STATUS_PORTS[s]}/readyz") for s in running
                )
                and ready_status(fleet, "east") == "True"
                and ready_status(fleet, "west") == "True",
                300,
            )
            peaks = PeakSampler({s: p.pid for s, p in running.items()})
            peaks.thread.start()
            run = asyncio.run(measure(control, running, args))
            peaks.stop.set()
            peaks.take()
            run.peak_mib = peaks.peak
            return run
        finally:
            for process in running.values():
                process.terminate()
            for process in running.values():
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


def spread(values: list[float], unit: str, digits: int = 1) -> str:
    def show(v: float) -> str:
        return f"{v:,.{digits}f}{unit}"

    return (
        f"median {show(statistics.median(values))}  min {show(min(values))}  "
        f"max {show(max(values))}  (n={len(values)})"
    )


def report(runs: list[Run], args: argparse.Namespace) -> None:
    count = f"{args.deployments:,}"
    print(f"\n== over {len(runs)} run(s), {count} ModelDeployments ==")
    print(f"kubectl apply of {count}: {spread([r.apply_s for r in runs], ' s')}")
    print(f"last apply -> every status written: {spread([r.settle_s for r in runs], ' s')}")
    changed = [r.clusters_changed_at_rest for r in runs]
    print(f"InferenceClusters whose status changed while at rest, per run: {changed}")
    more = [statistics.median(r.more_s) for r in runs]
    print(f"one more deployment placed (per-run medians): {spread(more, ' s', 2)}")
    each = [round(v, 2) for r in runs for v in r.more_s]
    print(f"one more deployment placed, every sample: {each}")
    mean_pass = [took for r in runs for _, took in r.more_passes if took]
    if mean_pass:
        print(f"fleet-scheduler pass while placing one more: {spread(mean_pass, ' s', 3)}")
    for service in services.SERVICES:
        print(f"{service}:")
        print(f"  RSS at rest: {spread([r.rss_mib[service] for r in runs], ' MiB')}")
        print(f"  RSS peak:    {spread([r.peak_mib[service] for r in runs], ' MiB')}")
        for what in ("lease", "other", "remote"):
            values = [getattr(r.rates[service], what) for r in runs]
            print(f"  requests/min at rest, {what}: {spread(values, '')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--more", type=int, default=3, help="one-more samples per run")
    parser.add_argument("--settle-s", type=float, default=15.0, help="wait before at rest")
    parser.add_argument("--rest-s", type=float, default=60.0, help="the at-rest window")
    args = parser.parse_args()
    runs = []
    for index in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
        run = one_run(work, args)
        runs.append(run)
        print(f"run {index + 1} (logs in {work}): {json.dumps(asdict(run))}")
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
