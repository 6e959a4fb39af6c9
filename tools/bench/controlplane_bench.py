"""Measures fleet-scheduler and cluster-provisioner on a live local fleet.

Brings up the fleet of `e2e/fleet.yaml` (control, east, west), applies its
classes and clusters, starts both services as their own identities, then:

1. apply-to-replicas (once both services answer `/readyz`): `--samples` times,
   applies a one-replica ModelDeployment and times from `kubectl apply`
   returning to its ModelReplica existing (polled at 50 ms);
2. not-Ready after stop: `--losses` times, adds a spare cluster, waits for it to
   be Ready, `stop`s it and times until its Ready condition is False;
3. memory: applies `--deployments` ModelDeployments (one replica each), waits
   for their replicas (or their Scheduled condition), and prints each service's
   RSS.

Prints min/median/max. Needs root, like the fleet.

    sudo .venv/bin/python tools/bench/controlplane_bench.py [--samples 10] [--losses 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from modelplane_localfleet.fleet import Fleet

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench.benchfleet import fleet_in, harness

ROOT = Path(__file__).resolve().parents[2]
FLEET_FILE = ROOT / "e2e" / "fleet.yaml"
SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'


def deployment(name: str, namespace: str) -> dict[str, object]:
    member = {
        "role": "Standalone",
        "nodeSelector": {
            "devices": [{"name": "gpu", "count": 1, "selectors": [{"cel": SELECTOR}]}]
        },
        "template": {"spec": {"containers": [{"name": "e", "image": "vllm/vllm-openai:v0.23.0"}]}},
    }
    return {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1, "engines": [{"name": "e", "members": [member]}]},
    }  # fmt: skip


def summary(values: list[float]) -> str:
    return (
        f"min {min(values):.2f}s  median {statistics.median(values):.2f}s  "
        f"max {max(values):.2f}s  (n={len(values)})"
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def ready_status(fleet: Fleet, name: str) -> str:
    out = fleet.cluster("control").kubectl(
        "get", "ic", name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        check=False,
    )  # fmt: skip
    return out.stdout.strip()


def wait(check: object, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--losses", type=int, default=3)
    parser.add_argument("--deployments", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="controlplane-bench-"))
    services: dict[str, subprocess.Popen[bytes]] = {}
    with fleet_in(work, FLEET_FILE) as fleet:
        control = fleet.cluster("control")
        address = control.plan.address
        state = fleet.state
        try:
            control.kubectl("apply", "-f", str(FLEET_FILE))
            for service, module, extra in (
                ("cluster-provisioner", "cluster_provisioner", []),
                ("fleet-scheduler", "fleet_scheduler", [f"--listen={address}:50261", "--insecure"]),
            ):
                port = 9201 if service == "cluster-provisioner" else 9202
                kubeconfig = control.kubeconfig_for(service)
                services[service] = subprocess.Popen(
                    [sys.executable, "-m", module, f"--kubeconfig={kubeconfig}",
                     f"--status-address={address}:{port}", *extra],
                    stdout=(work / f"{service}.log").open("w"), stderr=subprocess.STDOUT,
                )  # fmt: skip
            wait(
                lambda: ready_status(fleet, "east") == "True"
                and ready_status(fleet, "west") == "True"
            )
            control.kubectl("create", "namespace", "bench")

            latencies = []
            for i in range(args.samples):
                began = time.monotonic()
                control.kubectl(
                    "apply", "-f", "-", stdin=json.dumps(deployment(f"lat-{i}", "bench"))
                )
                wait(lambda i=i: control.kubectl(
                    "get", "modelreplica", "-n", "bench", "-l", f"modelplane.ai/deployment=lat-{i}",
                    "-o", "name").stdout.strip())  # fmt: skip
                latencies.append(time.monotonic() - began)
                control.kubectl(
                    "delete", "md", "-n", "bench", f"lat-{i}", "--cascade=foreground", "--wait=true"
                )
            print(f"kubectl apply -> ModelReplica exists: {summary(latencies)}")

            losses = []
            spare = work / "spare.yaml"
            cluster = {
                "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
                "metadata": {"name": "spare"},
                "spec": {"cluster": {"source": "Existing",
                                     "existing": {"secretRef": {"name": "spare-kubeconfig"}}},
                         "nodePools": [{"name": "l4", "className": "l4-single", "nodeCount": 1}]},
            }  # fmt: skip
            spare.write_text(FLEET_FILE.read_text() + "\n---\n" + json.dumps(cluster))
            harness("add", "spare", "-f", str(spare), "--state", str(state))
            control.kubectl("apply", "-f", "-", stdin=json.dumps(cluster))
            for _ in range(args.losses):
                wait(lambda: ready_status(fleet, "spare") == "True")
                harness("stop", "spare", "--state", str(state))
                began = time.monotonic()
                wait(lambda: ready_status(fleet, "spare") == "False")
                losses.append(time.monotonic() - began)
                harness("start", "spare", "--state", str(state))
            print(f"stop -> InferenceCluster not Ready: {summary(losses)}")
            control.kubectl("delete", "ic", "spare")
            harness("remove", "spare", "--state", str(state))

            stream = "\n".join(
                json.dumps(deployment(f"md-{i}", "bench")) for i in range(args.deployments)
            )
            control.kubectl("apply", "-f", "-", stdin=stream, timeout=600)

            wanted = int(args.deployments)

            def settled() -> bool:
                out = control.kubectl(
                    "get", "md", "-n", "bench", "-o",
                    "jsonpath={range .items[*]}{.status.observedGeneration}{'\\n'}{end}",
                ).stdout.split("\n")  # fmt: skip
                done: int = sum(1 for line in out if line.strip())
                return done >= wanted

            began = time.monotonic()
            wait(settled, 600)
            print(
                f"{args.deployments} ModelDeployments have status after "
                f"{time.monotonic() - began:.1f}s"
            )
            time.sleep(15)
            for service, process in services.items():
                print(
                    f"{service} RSS with {args.deployments} ModelDeployments: "
                    f"{rss_mib(process.pid):.0f} MiB"
                )
        finally:
            for process in services.values():
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
