"""KEDA on the local fleet drives a ModelDeployment through its scale subresource: 0 -> 1 -> N -> 0.

`modelplane-localfleet up --keda` on the session fleet adds KEDA's operator, metrics
adapter and admission webhooks to the control cluster (the binaries come from the
build step: `modelplane-localfleet build`). cluster-provisioner, fleet-scheduler and
endpoint-manager run as their own processes, so the deployment is placed and served
through the control plane. A `ScaledObject` made through kr8s (a Python Kubernetes
client) targets the documentation's qwen3-8b ModelDeployment with KEDA's `metrics-api`
trigger, which reads a number this test serves over HTTP on the control address: KEDA
activates the deployment (0 -> 1), the real kube-controller-manager's HPA scales it on
the external metric through the aggregated `external.metrics.k8s.io` API (1 -> N), and
KEDA deactivates it after the cooldown (-> 0).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kr8s
import pytest
import yaml
from modelplane_localfleet import binaries
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.components import KEDA
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.keda import APISERVICE

from e2e.backends import FLEET_FILE, harness
from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import (
    Service,
    cluster_provisioner,
    endpoint_manager,
    fleet_scheduler,
    serving,
)

pytestmark = [
    pytest.mark.usefixtures("local_fleet"),
    # kr8s lists the Kubernetes versions it was tested with; the API used here is stable.
    pytest.mark.filterwarnings("ignore:Kubernetes version .* is not supported:UserWarning"),
]
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests"
FLEET_API_PORT = 50211
METRIC_PORT = 18091
DEPLOYMENT = "qwen3-8b"
MAX_REPLICAS = 2
ScaledObject = kr8s.objects.new_class("ScaledObject", version="keda.sh/v1alpha1", namespaced=True)


class Metric:
    """The number the metrics-api trigger reads (`{"value": N}`), served on the control address."""

    def __init__(self, address: str) -> None:
        self.value = 0
        self.reads = 0
        metric = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                metric.reads += 1
                body = json.dumps({"value": metric.value}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((address, METRIC_PORT), Handler)
        self.url = f"http://{address}:{METRIC_PORT}/metric"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def keda_fleet(local_fleet: Fleet) -> Fleet:
    """The session fleet with KEDA added (`up --keda`), its external metrics API Available."""
    if not binaries.complete(KEDA, local_fleet.cache):
        message = "KEDA is not built: run `modelplane-localfleet build --component keda` first"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (tools/test builds every component before pytest)")
        pytest.fail(message)
    up = harness("up", "-f", str(FLEET_FILE), "--keda", "--state", str(local_fleet.state))
    assert up.returncode == 0, f"up --keda failed:\n{up.stdout}\n{up.stderr}"
    return local_fleet


@pytest.fixture(scope="module")
def services(
    keda_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = keda_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    address = control.plan.address
    running = {
        "cluster-provisioner": cluster_provisioner(
            keda_fleet, 9151, FLEET_API_PORT, logs / "cp.log"
        ),
        "fleet-scheduler": fleet_scheduler(keda_fleet, 9152, 50212, logs / "fs.log"),
        "endpoint-manager": endpoint_manager(
            keda_fleet, 9153, f"{address}:{FLEET_API_PORT}", logs / "em.log"
        ),
    }
    with serving(control, running, drain=True) as ready:
        yield ready


@pytest.fixture
def metric(keda_fleet: Fleet) -> Iterator[Metric]:
    served = Metric(keda_fleet.cluster("control").plan.address)
    yield served
    served.close()


def qwen(namespace: str) -> Json:
    """The documentation's qwen3-8b ModelDeployment, at zero replicas, on us-east."""
    manifest: Json = yaml.safe_load(
        (SEED / "examples" / "qwen3-8b" / "model-deployment.yaml").read_text()
    )
    manifest["metadata"]["namespace"] = namespace
    manifest["spec"]["replicas"] = 0
    manifest["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    return manifest


def scaled_object(name: str, namespace: str, url: str) -> dict[str, Any]:
    """KEDA's documented ScaledObject shape, aimed at the ModelDeployment's scale subresource."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "modelplane.ai/v1alpha1",
                "kind": "ModelDeployment",
                "name": DEPLOYMENT,
            },
            "pollingInterval": 5,
            "cooldownPeriod": 10,
            "minReplicaCount": 0,
            "maxReplicaCount": MAX_REPLICAS,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}
                }
            },
            "triggers": [
                {
                    "type": "metrics-api",
                    "metadata": {
                        "url": url,
                        "valueLocation": "value",
                        "targetValue": "1",
                        "activationTargetValue": "0",
                    },
                }
            ],
        },
    }


def scale(control: Cluster, namespace: str) -> Json:
    """The ModelDeployment's scale subresource, as the HPA and KEDA read it."""
    path = f"/apis/modelplane.ai/v1alpha1/namespaces/{namespace}/modeldeployments/{DEPLOYMENT}"
    found: Json = json.loads(control.kubectl("get", "--raw", path + "/scale").stdout)
    return found


def replicas(control: Cluster, namespace: str) -> int:
    spec: int = get(control, "modeldeployment", "-n", namespace, DEPLOYMENT)["spec"]["replicas"]
    return spec


def keda_status(control: Cluster, namespace: str, name: str) -> dict[str, str]:
    found = get(control, "scaledobject", "-n", namespace, name)
    return {kind: condition(found, kind).get("status", "") for kind in ("Ready", "Active")}


def test_the_external_metrics_api_is_served_by_keda_through_the_aggregation_layer(
    keda_fleet: Fleet,
) -> None:
    control = keda_fleet.cluster("control")
    apiservice = get(control, "apiservice", APISERVICE)
    assert condition(apiservice, "Available")["status"] == "True", apiservice["status"]
    listed = json.loads(
        control.kubectl("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1").stdout
    )
    assert listed["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    statuses = {s.component: s.healthy for s in control.status()}
    assert statuses["keda-operator"] and statuses["keda-admission-webhooks"], statuses


def test_keda_scales_a_model_deployment_from_zero_to_n_and_back_to_zero(
    keda_fleet: Fleet, services: dict[str, Service], namespace: str, metric: Metric
) -> None:
    control = keda_fleet.cluster("control")
    apply(control, qwen(namespace))
    # The scale subresource's selector is fleet-scheduler's status.selector: the label every
    # ModelReplica of this deployment carries, one deployment per selector, valid for the HPA.
    selector = wait_for(
        "the scale subresource's selector",
        lambda: scale(control, namespace).get("status", {}).get("selector"),
        60,
    )
    assert selector == f"modelplane.ai/deployment={DEPLOYMENT}"
    assert scale(control, namespace)["spec"].get("replicas", 0) == 0  # Scale omits a zero

    api = kr8s.api(kubeconfig=str(control.kubeconfig_path))
    ScaledObject(scaled_object("qwen", namespace, metric.url), api=api).create()
    wait_for(
        "ScaledObject READY, not ACTIVE, at zero",
        lambda: keda_status(control, namespace, "qwen") == {"Ready": "True", "Active": "False"},
        120,
        1,
    )
    assert metric.reads > 0, "KEDA read the metric"
    assert replicas(control, namespace) == 0
    hpa = get(control, "hpa", "-n", namespace, "keda-hpa-qwen")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "name": DEPLOYMENT,
    }

    metric.value = 1  # activation: KEDA scales 0 -> 1
    wait_for("KEDA's 0 -> 1", lambda: replicas(control, namespace) == 1, 120, 1)
    wait_for(
        "ScaledObject ACTIVE",
        lambda: keda_status(control, namespace, "qwen") == {"Ready": "True", "Active": "True"},
        60,
        1,
    )
    wait_for(
        "one ModelReplica", lambda: len(items(control, "modelreplicas", "-n", namespace)) == 1, 60
    )

    metric.value = MAX_REPLICAS  # the HPA's 1 -> N on the external metric (target 1 each)
    wait_for(
        f"the HPA's 1 -> {MAX_REPLICAS}",
        lambda: replicas(control, namespace) == MAX_REPLICAS,
        180,
        1,
    )
    hpa = get(control, "hpa", "-n", namespace, "keda-hpa-qwen")
    assert hpa["status"]["desiredReplicas"] == MAX_REPLICAS, hpa["status"]
    assert condition(hpa, "ScalingActive")["status"] == "True", hpa["status"]
    # What the selector selects on the control cluster: exactly this deployment's ModelReplicas
    # (no pods: those run on inference clusters), as many as the scale's status.replicas.
    wait_for(
        f"{MAX_REPLICAS} ModelReplicas selected by {selector}",
        lambda: len(items(control, "modelreplicas", "-n", namespace, "-l", selector))
        == MAX_REPLICAS,
        60,
    )
    wait_for(
        "the scale's status.replicas",
        lambda: scale(control, namespace)["status"].get("replicas") == MAX_REPLICAS,
        60,
    )
    assert not items(control, "pods", "-n", namespace, "-l", selector)

    metric.value = 0  # deactivation after the cooldown: -> 0
    wait_for("KEDA's -> 0", lambda: replicas(control, namespace) == 0, 180, 1)
    wait_for(
        "ScaledObject READY, not ACTIVE, again",
        lambda: keda_status(control, namespace, "qwen") == {"Ready": "True", "Active": "False"},
        60,
        1,
    )
    wait_for("no ModelReplica", lambda: not items(control, "modelreplicas", "-n", namespace), 120)


def test_the_admission_webhook_refuses_a_second_scaled_object_on_the_same_deployment(
    keda_fleet: Fleet, namespace: str, metric: Metric
) -> None:
    control = keda_fleet.cluster("control")
    api = kr8s.api(kubeconfig=str(control.kubeconfig_path))
    ScaledObject(scaled_object("first", namespace, metric.url), api=api).create()
    attempts = iter(range(1000))

    def refused() -> str | None:
        """The webhook's answer to another ScaledObject (it sees `first` once its cache has it)."""
        manifest = scaled_object(f"second-{next(attempts)}", namespace, metric.url)
        second = ScaledObject(manifest, api=api)
        try:
            second.create()
        except kr8s.ServerError as error:
            return str(error)
        second.delete()
        return None

    text = wait_for("the webhook's refusal", refused, 30, 1)
    expected = f"the workload '{DEPLOYMENT}' of type "
    assert expected in text and "is already managed by the ScaledObject 'first'" in text, text
