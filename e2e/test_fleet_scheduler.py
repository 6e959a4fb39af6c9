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
from e2e.services import Service, cluster_provisioner, fleet_scheduler, grpc_client, tls_dir

pytestmark = pytest.mark.usefixtures("local_fleet")
SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'
API = "modelplane.ai/v1alpha1"
GRPC_PORT = 50161


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
    try:
        for name in ("east", "west"):
            wait_for(f"{name} Ready", functools.partial(_ready, control, name))
        yield running
    finally:
        for service in running.values():
            service.stop()
            print(service.log.read_text()[-3000:])


def _ready(control: Cluster, name: str) -> bool:
    return condition(get(control, "inferencecluster", name), "Ready").get("status") == "True"


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


def test_a_restarted_scheduler_makes_no_duplicate_and_exports_metrics(
    local_fleet: Fleet, services: dict[str, Service], namespace: str, tmp_path: Path
) -> None:
    control = local_fleet.cluster("control")
    apply(control, model_deployment(namespace, 2))
    before = wait_for("two replicas", lambda: count(control, namespace, 2), 30)
    code, body = services["fleet-scheduler"].get("/metrics")
    assert code == 200
    assert (
        'modelplane_reconcile_total{kind="ModelDeployment",result="ok",service="fleet-scheduler"}'
        in body
    )
    services["fleet-scheduler"].stop()
    services["fleet-scheduler"] = fleet_scheduler(
        local_fleet, 9112, GRPC_PORT, tmp_path / "fs2.log"
    )
    wait_for("the new copy ready", lambda: services["fleet-scheduler"].get("/readyz")[0] == 200, 40)
    time.sleep(3)
    assert replicas(control, namespace) == before


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
        wait_for("doomed Ready", functools.partial(_ready, control, "doomed"), 60)
        deployment = model_deployment(namespace, 2)
        deployment["spec"]["clusterSelector"] = {"matchLabels": {"e2e-loss": "yes"}}
        apply(control, deployment)
        placed = wait_for("two replicas", lambda: count(control, namespace, 2), 30)
        assert sorted(placed.values()) == ["doomed", "east"], placed
        assert harness("stop", "doomed", "--state", state).returncode == 0
        wait_for("doomed not Ready", lambda: not _ready(control, "doomed"), 30)
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
