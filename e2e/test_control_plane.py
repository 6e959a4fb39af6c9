"""The control plane's own controllers run: a Deployment gets pods, and the scheduler binds them."""

from __future__ import annotations

import json
import time

from e2e.backends import ClusterHandle

NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "fake-node-0", "labels": {"modelplane.ai/pool": "test"}},
    "status": {
        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
    },
}

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "probe", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "probe"}},
        "template": {
            "metadata": {"labels": {"app": "probe"}},
            "spec": {
                "nodeSelector": {"modelplane.ai/pool": "test"},
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "c", "image": "example.invalid/probe:1"}],
            },
        },
    },
}


def _pods(control: ClusterHandle) -> list[dict]:  # type: ignore[type-arg]
    out = control.kubectl("get", "pods", "-n", "default", "-l", "app=probe", "-o", "json").stdout
    items: list[dict] = json.loads(out)["items"]  # type: ignore[type-arg]
    return items


def test_the_controller_manager_creates_pods_and_the_scheduler_binds_them(
    control: ClusterHandle,
) -> None:
    control.kubectl("apply", "-f", "-", stdin=json.dumps(NODE))
    control.kubectl("apply", "-f", "-", stdin=json.dumps(DEPLOYMENT))
    pods: list[dict] = []  # type: ignore[type-arg]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pods = _pods(control)
            if len(pods) == 2 and all(p["spec"].get("nodeName") for p in pods):
                break
            time.sleep(0.5)
    finally:
        # The fleet is shared by the session: leave no fake node (it reports no platform, which
        # tools such as skaffold read from the cluster's nodes) and no pods bound to it.
        control.kubectl("delete", "deployment", "probe", "-n", "default", "--wait=false")
        control.kubectl("delete", "node", "fake-node-0", "--wait=false")
    assert len(pods) == 2, "the ReplicaSet controller made two pods"
    assert {p["spec"].get("nodeName") for p in pods} == {"fake-node-0"}, "the scheduler bound both"
