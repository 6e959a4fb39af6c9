"""Measures the node agent: pod start-to-Ready latency, pods per cluster, simulator memory.

Brings up a local fleet with one inference cluster `bench` (NODES nodes of one
pool), then:

1. start-to-Ready: creates one simulator pod at a time (readiness probe on
   `/health` every second, as the platform configures it) and times, by polling
   at 50 ms, from `kubectl create` returning to the pod's Ready condition; prints
   min/median/max over `--samples` pods;
2. pods per cluster: scales a Deployment of simulator pods through `--steps`,
   timing each step until every pod is Ready, then checks each pod answers
   `GET /health` on its own IP, and reports the agent's and the simulators'
   memory (RSS and PSS per simulator process: median and max).

Stops at the first step that does not become Ready within `--timeout`. Needs
root, like the fleet.

    sudo .venv/bin/python tools/bench/nodeagent_bench.py [--steps 50,100,200] [--samples 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from modelplane_localfleet.fleet import Fleet

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.bench.benchfleet import fleet_in  # noqa: E402

MIB = 1 << 20
FLEET = """
apiVersion: modelplane.ai/v1alpha1
kind: InferenceClass
metadata: {{name: bench-gpu}}
spec:
  devices:
  - {{name: gpu, driver: gpu.nvidia.com, deviceClassName: gpu.nvidia.com, count: 1}}
---
apiVersion: modelplane.ai/v1alpha1
kind: InferenceCluster
metadata: {{name: bench}}
spec:
  cluster: {{source: Existing, existing: {{secretRef: {{name: bench-kubeconfig}}}}}}
  nodePools: [{{name: pool, className: bench-gpu, nodeCount: {nodes}}}]
"""


def pod_spec() -> dict[str, object]:
    return {
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "engine",
                "image": "modelplane/enginesim:bench",
                "args": ["--model=bench"],
                "readinessProbe": {
                    "httpGet": {"path": "/health", "port": 8000},
                    "periodSeconds": 1,
                },
            }
        ],
    }


def memory(pid: int) -> tuple[int, int]:
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) * 1024
    return rss, pss


def processes(fleet: Fleet, needle: str) -> list[int]:
    found = []
    for pid in fleet.namespace.pids():
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(pid)
        except OSError:
            continue
    return found


def summary(values: list[float], unit: str) -> str:
    return (
        f"min {min(values):.2f}{unit}  median {statistics.median(values):.2f}{unit}  "
        f"max {max(values):.2f}{unit}"
    )


def ready_count(fleet: Fleet) -> tuple[int, list[str]]:
    out = fleet.cluster("bench").kubectl(
        "get", "pods", "-n", "bench", "-l", "app=sim", "-o", "json"
    )
    pods = json.loads(out.stdout)["items"]
    ready = [
        p["status"]["podIP"]
        for p in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
        and not p["metadata"].get("deletionTimestamp")
    ]
    return len(ready), ready


def start_to_ready(fleet: Fleet, samples: int) -> list[float]:
    cluster = fleet.cluster("bench")
    latencies = []
    for i in range(samples):
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"lat-{i}", "namespace": "bench"}, "spec": pod_spec(),
        }  # fmt: skip
        began = time.monotonic()
        cluster.kubectl("create", "-f", "-", stdin=json.dumps(pod))
        while True:
            out = cluster.kubectl(
                "get", "pod", "-n", "bench", f"lat-{i}", "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            )  # fmt: skip
            if out.stdout.strip() == "True":
                break
            time.sleep(0.05)
        latencies.append(time.monotonic() - began)
        cluster.kubectl("delete", "pod", "-n", "bench", f"lat-{i}", "--wait=true")
    return latencies


def scale_steps(fleet: Fleet, steps: list[int], timeout_s: float) -> None:
    cluster = fleet.cluster("bench")
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sim", "namespace": "bench"},
        "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": "sim"}},
            "template": {"metadata": {"labels": {"app": "sim"}}, "spec": pod_spec()},
        },
    }  # fmt: skip
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(deployment))
    for step in steps:
        began = time.monotonic()
        cluster.kubectl("scale", "-n", "bench", "deployment/sim", f"--replicas={step}")
        while (ready := ready_count(fleet))[0] < step:
            if time.monotonic() - began > timeout_s:
                print(f"{step} pods: only {ready[0]} Ready after {timeout_s:.0f}s; stopping")
                return
            time.sleep(0.5)
        wall = time.monotonic() - began
        healthy = 0
        for address in ready[1]:
            try:
                with urllib.request.urlopen(f"http://{address}:8000/health", timeout=5) as reply:
                    healthy += reply.status == 200
            except OSError:
                pass
        time.sleep(3)
        sims = [memory(pid) for pid in processes(fleet, "modelplane_enginesim")]
        agent = [memory(pid) for pid in processes(fleet, "modelplane_localfleet.nodeagent")]
        rss = [r / MIB for r, _ in sims]
        pss = [p / MIB for _, p in sims]
        print(
            f"{step} pods: all Ready {wall:.1f}s after scaling; {healthy}/{step} answer /health; "
            f"simulator RSS median {statistics.median(rss):.1f} MiB max {max(rss):.1f}, "
            f"PSS median {statistics.median(pss):.1f} MiB; "
            f"node agent RSS {sum(r for r, _ in agent) / MIB:.0f} MiB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="25,50,100,200")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    nodes = max(1, -(-max(steps) // 100))
    work = Path(tempfile.mkdtemp(prefix="nodeagent-bench-"))
    (work / "fleet.yaml").write_text(FLEET.format(nodes=nodes))
    with fleet_in(work, work / "fleet.yaml") as fleet:
        fleet.cluster("bench").kubectl("create", "namespace", "bench")
        latencies = start_to_ready(fleet, args.samples)
        print(f"start-to-Ready over {args.samples} pods: {summary(latencies, 's')}")
        scale_steps(fleet, steps, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
