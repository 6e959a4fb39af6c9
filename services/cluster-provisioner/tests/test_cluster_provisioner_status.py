"""The status cluster-provisioner writes, decided from what it observed (no I/O)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cluster_provisioner.observe import credentials
from cluster_provisioner.status import Credentials, Inspection, decide

NOW = "2026-11-29T03:00:00Z"
LATER = "2026-11-29T03:05:00Z"
GPU = {"name": "gpu", "driver": "gpu.nvidia.com", "deviceClassName": "gpu.nvidia.com", "count": 1}
CLASSES = {"l4": {"metadata": {"name": "l4"}, "spec": {"devices": [GPU]}}}
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: https://x}}]\n"
OK = Credentials(kubeconfig=KUBECONFIG)
HEALTHY = Inspection(gateway_address="10.240.0.2", ready_nodes={"l4": 2})


def cluster(
    source: str = "Existing", node_pools: list[dict[str, Any]] | None = None, **status: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": source}
    if source == "Existing":
        spec["existing"] = {"secretRef": {"name": "east-kubeconfig", "key": "kubeconfig"}}
    return {
        "metadata": {"name": "east", "generation": 3},
        "spec": {
            "cluster": spec,
            "nodePools": node_pools or [{"name": "l4", "className": "l4", "nodeCount": 2}],
        },
        "status": status,
    }


def ready(status: dict[str, Any]) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == "Ready")
    return found["status"], found["reason"], found["message"]


def test_a_healthy_cluster_is_ready_with_its_gateway_and_pools() -> None:
    status = decide(cluster(), CLASSES, OK, HEALTHY, NOW)
    assert status == {
        "observedGeneration": 3,
        "gatewayAddress": "10.240.0.2",
        "pools": [{"name": "l4", "className": "l4", "nodes": 2, "devices": [GPU]}],
        "conditions": [
            {
                "type": "PoolsAvailable", "status": "True", "reason": "AllPoolsAvailable",
                "message": "InferenceCluster/east: every pool's InferenceClass exists",
                "observedGeneration": 3, "lastTransitionTime": NOW,
            },
            {
                "type": "Ready", "status": "True", "reason": "ClusterReady",
                "message": "InferenceCluster/east: reachable, serving stack present, gateway at 10.240.0.2",
                "observedGeneration": 3, "lastTransitionTime": NOW,
            },
        ],
        "schedulerExtension": {
            "health": "Absent", "accounting": "Node",
            "message": "no Lease kube-system/modelplane-scheduler-extender: the scheduler "
            "extension is not installed",
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "source", "creds", "inspection", "expected"),
    [
        ("GKE is accepted but not provisioned yet", "GKE", None, None,
         ("False", "ProvisioningNotSupported", "InferenceCluster/east spec.cluster.source: provisioning GKE clusters is not supported yet; use source: Existing with a kubeconfig Secret")),
        ("a missing Secret is named", "Existing",
         Credentials(reason="SecretNotFound", message="InferenceCluster/east spec.cluster.existing.secretRef.name: Secret modelplane-system/east-kubeconfig not found"), None,
         ("False", "SecretNotFound", "InferenceCluster/east spec.cluster.existing.secretRef.name: Secret modelplane-system/east-kubeconfig not found")),
        ("an unreachable cluster says why", "Existing", OK, Inspection(error="All connection attempts failed"),
         ("False", "ClusterUnreachable", "InferenceCluster/east: cannot reach the cluster: All connection attempts failed")),
        ("missing CRDs are listed", "Existing", OK, Inspection(missing_crds=("leaderworkersets.leaderworkerset.x-k8s.io",), gateway_address="a"),
         ("False", "StackIncomplete", "InferenceCluster/east: the cluster lacks the serving stack's CRDs: leaderworkersets.leaderworkerset.x-k8s.io")),
        ("a gateway without an address is not ready", "Existing", OK, Inspection(gateway_problem="Gateway modelplane-system/modelplane-inference has no address"),
         ("False", "GatewayNotReady", "InferenceCluster/east: Gateway modelplane-system/modelplane-inference has no address")),
    ],
)  # fmt: skip
def test_not_ready(
    name: str,
    source: str,
    creds: Credentials | None,
    inspection: Inspection | None,
    expected: tuple[str, str, str],
) -> None:
    assert ready(decide(cluster(source), CLASSES, creds, inspection, NOW)) == expected


def test_an_unreachable_cluster_keeps_its_published_gateway_and_pools() -> None:
    before = decide(cluster(), CLASSES, OK, HEALTHY, NOW)
    after = decide(cluster(**before), CLASSES, OK, Inspection(error="refused"), LATER)
    assert (after["gatewayAddress"], after["pools"]) == (before["gatewayAddress"], before["pools"])
    assert ready(after)[0] == "False"


def test_transition_times_move_only_when_a_condition_changes() -> None:
    before = decide(cluster(), CLASSES, OK, HEALTHY, NOW)
    same = decide(cluster(**before), CLASSES, OK, HEALTHY, LATER)
    assert same == before
    down = decide(cluster(**before), CLASSES, OK, Inspection(error="refused"), LATER)
    times = {c["type"]: c["lastTransitionTime"] for c in down["conditions"]}
    assert times == {"Ready": LATER, "PoolsAvailable": NOW}


def test_a_missing_class_makes_its_pool_unavailable_and_leaves_it_out() -> None:
    pools = [
        {"name": "l4", "className": "l4", "nodeCount": 2},
        {"name": "big", "className": "h100-8x", "nodeCount": 1},
    ]
    status = decide(cluster(node_pools=pools), CLASSES, OK, HEALTHY, NOW)
    assert [p["name"] for p in status["pools"]] == ["l4"]
    available = next(c for c in status["conditions"] if c["type"] == "PoolsAvailable")
    assert (available["status"], available["reason"], available["message"]) == (
        "False",
        "ClassNotFound",
        "InferenceCluster/east spec.nodePools[1].className: InferenceClass 'h100-8x' not found",
    )


def _secret(data: dict[str, str]) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.mark.parametrize(
    ("name", "secret", "expected"),
    [
        ("a good kubeconfig", _secret({"kubeconfig": KUBECONFIG}), Credentials(kubeconfig=KUBECONFIG)),
        ("no Secret", None, Credentials(reason="SecretNotFound", message="InferenceCluster/east spec.cluster.existing.secretRef.name: Secret modelplane-system/east-kubeconfig not found")),
        ("no such key", _secret({"config": KUBECONFIG}), Credentials(reason="SecretKeyNotFound", message="InferenceCluster/east spec.cluster.existing.secretRef.key: Secret modelplane-system/east-kubeconfig has no key 'kubeconfig'")),
        ("not a kubeconfig", _secret({"kubeconfig": "just text"}), Credentials(reason="KubeconfigInvalid", message="InferenceCluster/east spec.cluster.existing.secretRef: key 'kubeconfig' of Secret modelplane-system/east-kubeconfig is not a kubeconfig (no clusters)")),
    ],
)  # fmt: skip
def test_credentials(name: str, secret: dict[str, Any] | None, expected: Credentials) -> None:
    assert credentials(cluster(), secret, "modelplane-system") == expected


RENEWED_3S_BEFORE = {"spec": {"holderIdentity": "x", "leaseDurationSeconds": 15,
                               "renewTime": "2026-12-03T17:59:57.000000Z"}}  # fmt: skip


def test_a_cluster_with_a_healthy_extender_offers_device_accounting() -> None:
    inspection = Inspection(gateway_address="10.240.0.2", ready_nodes={"l4": 2},
                            extension_lease=RENEWED_3S_BEFORE)  # fmt: skip
    status = decide(cluster(), CLASSES, OK, inspection, "2026-12-03T18:00:00Z")
    assert status["schedulerExtension"]["accounting"] == "Device"


def test_an_unreachable_cluster_keeps_the_extension_status_it_had() -> None:
    before = {"health": "Healthy", "accounting": "Device", "message": "m"}
    status = decide(cluster(schedulerExtension=before), CLASSES, OK, Inspection(error="refused"),
                    LATER)  # fmt: skip
    assert status["schedulerExtension"] == before
