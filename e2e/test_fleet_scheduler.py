"""fleet-scheduler on the local fleet: ModelReplicas follow ModelDeployments and `kubectl scale`.

cluster-provisioner publishes the e2e fleet's clusters (Ready, pools); the
fleet-scheduler, as its own process and identity, places replicas with the same
core `modelplane schedule` uses, so the offline plan over the same objects
names the same clusters.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelplane.scheduling.offline import plan
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE, harness
from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import (
    Service,
    cluster_provisioner,
    cluster_ready,
    fleet_scheduler,
    grpc_client,
    serving,
    tls_dir,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'
API = "modelplane.ai/v1alpha1"
GRPC_PORT = 50161
LEASE_DURATION_S = 15
WATCH_START_S = 2.0


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    running = {
        "cluster-provisioner": cluster_provisioner(local_fleet, 9111, 50181, logs / "cp.log"),
        "fleet-scheduler": fleet_scheduler(local_fleet, 9112, GRPC_PORT, logs / "fs.log"),
    }
    with serving(control, running) as ready:
        yield ready


def model_deployment(namespace: str, replicas: int, selector: str = SELECTOR) -> Json:
    member: dict[str, Any] = {
        "role": "Standalone",
        "nodeSelector": {
            "devices": [{"name": "gpu", "count": 1, "selectors": [{"cel": selector}]}]
        },
        "template": {
            "spec": {"containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.23.0"}]}
        },
    }
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": "chat", "namespace": namespace},
        "spec": {"replicas": replicas, "engines": [{"name": "chat", "members": [member]}]},
    }


def replicas(control: Cluster, namespace: str) -> dict[str, str]:
    """Replica name -> cluster."""
    return {
        r["metadata"]["name"]: r["spec"]["clusterName"]
        for r in items(control, "modelreplicas", "-n", namespace)
    }


def count(control: Cluster, namespace: str, wanted: int) -> dict[str, str] | None:
    found = replicas(control, namespace)
    return found if len(found) == wanted else None


def has_count(control: Cluster, namespace: str, wanted: int) -> bool:
    return len(replicas(control, namespace)) == wanted


def fleet_objects(control: Cluster) -> list[Json]:
    out = []
    for kind, plural in (
        ("InferenceClass", "inferenceclasses"),
        ("InferenceCluster", "inferenceclusters"),
    ):
        for item in items(control, plural):
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", API)
            out.append(item)
    return out


def test_replicas_follow_the_deployment_and_kubectl_scale(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control = local_fleet.cluster("control")
    deployment = model_deployment(namespace, 2)
    expected = plan([*fleet_objects(control), deployment], offline=False).deployments[0]
    began = time.monotonic()
    apply(control, deployment)
    placed = wait_for("two ModelReplicas", lambda: count(control, namespace, 2), 30)
    print(f"ModelReplicas existed {time.monotonic() - began:.2f}s after kubectl apply")
    assert sorted(placed.values()) == sorted(r.cluster for r in expected.replicas)
    table = control.kubectl("get", "modelreplica", "-n", namespace).stdout
    assert "CLUSTER" in table.splitlines()[0] and "east" in table

    for wanted in (3, 1, 0):
        control.kubectl("scale", "-n", namespace, "md/chat", f"--replicas={wanted}")
        wait_for(f"{wanted} replicas", functools.partial(has_count, control, namespace, wanted))
        now = replicas(control, namespace)
        indices = sorted(int(name.rsplit("-", 1)[1]) for name in now)
        assert indices == list(range(wanted)), indices
    control.kubectl("scale", "-n", namespace, "md/chat", "--replicas=2")
    wait_for("two replicas again", lambda: count(control, namespace, 2), 30)

    def scale() -> Json | None:
        raw = control.kubectl(
            "get",
            "--raw",
            f"/apis/modelplane.ai/v1alpha1/namespaces/{namespace}/modeldeployments/chat/scale",
        ).stdout
        found: Json = json.loads(raw)
        return found if found.get("status", {}).get("replicas") == 2 else None

    found = wait_for("the scale subresource to show 2", scale)
    assert found["spec"]["replicas"] == 2
    assert found["status"]["selector"] == "modelplane.ai/deployment=chat"
    md = get(control, "md", "-n", namespace, "chat")
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]


def test_an_invalid_selector_on_a_running_deployment_is_a_condition_and_keeps_replicas(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control = local_fleet.cluster("control")
    apply(control, model_deployment(namespace, 1))
    before = wait_for("one replica", lambda: count(control, namespace, 1), 30)
    broken = model_deployment(namespace, 3, selector="device.capacity[")
    apply(control, broken)

    def scheduled() -> Json | None:
        found = condition(get(control, "md", "-n", namespace, "chat"), "Scheduled")
        return found if found.get("reason") == "InvalidSelector" else None

    found = wait_for("InvalidSelector", scheduled, 30)
    assert f"ModelDeployment {namespace}/chat" in found["message"], found["message"]
    time.sleep(2)
    assert replicas(control, namespace) == before
    assert services["fleet-scheduler"].process.poll() is None


def _kill_at_first_replica(
    control: Cluster, namespace: str, leader: Service, deployment: Json
) -> int:
    """Apply `deployment` and kill `leader` (SIGKILL) as soon as a watch, started
    before the apply, sees its first ModelReplica; return how many existed then.
    kubectl prints nothing once its watch is established, so the apply waits a
    generous `WATCH_START_S` for it (if the watch were late, the kill would be
    too, and the count printed would show it)."""
    kubectl = [str(control.binaries.kubectl), f"--kubeconfig={control.kubeconfig_path}"]
    watch = subprocess.Popen(
        control.client_args([*kubectl, "get", "modelreplicas", "-n", namespace,
                             "--watch-only", "--output=name"]),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        time.sleep(WATCH_START_S)
        apply(control, deployment)
        first = watch.stdout.readline()
        leader.stop()
        assert first.startswith("modelreplica"), first
    finally:
        watch.kill()
        watch.wait(10)
    return len(replicas(control, namespace))


def _holder(control: Cluster) -> str:
    lease = get(control, "lease", "-n", "modelplane-system", "fleet-scheduler")
    return str(lease["spec"].get("holderIdentity") or "")


def _indices(control: Cluster, namespace: str) -> list[int]:
    return sorted(int(name.rsplit("-", 1)[1]) for name in replicas(control, namespace))


def test_killing_the_leader_mid_reconcile_hands_over_with_no_duplicate(
    local_fleet: Fleet, services: dict[str, Service], namespace: str, tmp_path: Path
) -> None:
    """Two copies run; the leader dies (SIGKILL) while it creates four replicas; the
    standby takes the lease within its duration and finishes the job. Then that leader
    is killed mid-scale and started again: the same four replicas, never a duplicate."""
    control = local_fleet.cluster("control")
    leader = services["fleet-scheduler"]
    standby = fleet_scheduler(local_fleet, 9113, GRPC_PORT + 1, tmp_path / "standby.log")
    wait_for("the standby serving", lambda: standby.get("/healthz")[0] == 200, 40)
    assert _holder(control).endswith(f"-{leader.process.pid}")
    assert 'modelplane_leader{service="fleet-scheduler"} 0.0' in standby.get("/metrics")[1]

    try:
        existed = _kill_at_first_replica(control, namespace, leader, model_deployment(namespace, 4))
        killed_at = time.monotonic()
        print(f"leader killed with {existed} of 4 replicas created")
        services["fleet-scheduler"] = standby
        wait_for(
            "the standby to hold the lease",
            lambda: _holder(control).endswith(f"-{standby.process.pid}"),
            30,
        )
        took = time.monotonic() - killed_at
        print(f"standby took over {took:.1f}s after the leader was killed")
        assert took <= LEASE_DURATION_S + 5
        wait_for("four replicas", lambda: count(control, namespace, 4), 30)
        assert _indices(control, namespace) == [0, 1, 2, 3]

        control.kubectl("scale", "-n", namespace, "md/chat", "--replicas=1")
        time.sleep(0.05)
        standby.stop()
        services["fleet-scheduler"] = fleet_scheduler(
            local_fleet, 9112, GRPC_PORT, tmp_path / "restarted.log"
        )
        wait_for(
            "the restarted copy ready",
            lambda: services["fleet-scheduler"].get("/readyz")[0] == 200,
            40,
        )
        wait_for("one replica", lambda: count(control, namespace, 1), 30)
        control.kubectl("scale", "-n", namespace, "md/chat", "--replicas=4")
        wait_for("four replicas again", lambda: count(control, namespace, 4), 30)
        time.sleep(3)
        assert _indices(control, namespace) == [0, 1, 2, 3]
    finally:  # whatever failed, the tests that follow get one copy on the usual ports
        if standby.process.poll() is None:
            standby.stop()
        if services["fleet-scheduler"].process.poll() is not None:
            services["fleet-scheduler"] = fleet_scheduler(
                local_fleet, 9112, GRPC_PORT, tmp_path / "replacement.log"
            )


def test_explain_asks_the_live_scheduler_over_mutual_tls_and_plain_callers_are_refused(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control = local_fleet.cluster("control")
    apply(control, model_deployment(namespace, 2))
    placed = wait_for("two replicas", lambda: count(control, namespace, 2), 30)
    target = f"{control.plan.address}:{GRPC_PORT}"
    explained = subprocess.run(
        [sys.executable, "-m", "modelplane", "explain", "md/chat", "-n", namespace,
         f"--scheduler={target}", f"--tls-dir={tls_dir(local_fleet, 'modelplane-cli')}"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    for cluster in placed.values():
        assert cluster in explained.stdout, explained.stdout
    codes = grpc_client(
        "refused", "scheduler", target, str(tls_dir(local_fleet, "fleet-scheduler"))
    )
    assert codes["with_cert"][0] in ("OK", "NOT_FOUND"), codes
    assert codes["ca_only"][0] == codes["plain"][0] == "UNAVAILABLE", codes


def test_a_lost_cluster_keeps_its_replica_until_deleted_then_it_is_replaced(
    local_fleet: Fleet, services: dict[str, Service], namespace: str, tmp_path: Path
) -> None:
    """On a disposable cluster `doomed`: the deployment selects it and east (label
    e2e-loss), spreads one replica on each, and loses `doomed`."""
    control = local_fleet.cluster("control")
    doomed: Json = {
        "apiVersion": API, "kind": "InferenceCluster",
        "metadata": {"name": "doomed", "labels": {"e2e-loss": "yes"}},
        "spec": {"cluster": {"source": "Existing",
                             "existing": {"secretRef": {"name": "doomed-kubeconfig"}}},
                 "nodePools": [{"name": "l4", "className": "l4-single", "nodeCount": 1}]},
    }  # fmt: skip
    fleet_file = tmp_path / "doomed.yaml"
    fleet_file.write_text(FLEET_FILE.read_text() + "\n---\n" + json.dumps(doomed))
    state = str(local_fleet.state)
    assert harness("add", "doomed", "-f", str(fleet_file), "--state", state).returncode == 0
    try:
        control.kubectl("label", "ic", "east", "e2e-loss=yes", "--overwrite")
        apply(control, doomed)
        wait_for("doomed Ready", functools.partial(cluster_ready, control, "doomed"), 180)
        deployment = model_deployment(namespace, 2)
        deployment["spec"]["clusterSelector"] = {"matchLabels": {"e2e-loss": "yes"}}
        apply(control, deployment)
        placed = wait_for("two replicas", lambda: count(control, namespace, 2), 30)
        assert sorted(placed.values()) == ["doomed", "east"], placed
        assert harness("stop", "doomed", "--state", state).returncode == 0
        wait_for("doomed not Ready", lambda: not cluster_ready(control, "doomed"), 30)
        time.sleep(3)
        assert replicas(control, namespace) == placed, "a degraded cluster keeps its replicas"
        control.kubectl("delete", "ic", "doomed")

        def replaced() -> dict[str, str] | None:
            now = replicas(control, namespace)
            return now if sorted(now.values()) == ["east", "east"] else None

        now = wait_for("the lost replica re-placed on east", replaced, 60)
        kept = {n: c for n, c in placed.items() if c == "east"}
        assert kept.items() <= now.items(), "the east replica never moved"
    finally:
        control.kubectl("label", "ic", "east", "e2e-loss-", check=False)
        control.kubectl("delete", "ic", "doomed", "--ignore-not-found")
        harness("remove", "doomed", "--state", state)


def test_each_service_exports_its_metrics_with_non_zero_values(
    services: dict[str, Service],
) -> None:
    """Runs last: after the tests above, every named series is there and has counted."""
    for name, kind in (
        ("fleet-scheduler", "ModelDeployment"),
        ("cluster-provisioner", "InferenceCluster"),
    ):
        code, body = services[name].get("/metrics")
        assert code == 200, body
        labels = f'kind="{kind}",service="{name}"'
        values = _samples(body)
        assert (
            values[f'modelplane_reconcile_total{{kind="{kind}",result="ok",service="{name}"}}'] > 0
        )
        assert values[f"modelplane_reconcile_duration_seconds_count{{{labels}}}"] > 0
        assert values[f"modelplane_queue_adds_total{{{labels}}}"] > 0
        assert f"modelplane_queue_depth{{{labels}}}" in values
        assert f"modelplane_reconcile_errors_total{{{labels}}}" in values
        assert values[f'modelplane_leader{{service="{name}"}}'] == 1


def _samples(body: str) -> dict[str, float]:
    found = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found
