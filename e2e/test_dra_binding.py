"""DRA binding on the local fleet: the real kube-scheduler allocates the node agent's devices.

east has two `h100` nodes with two Hopper GPUs each (four devices in all) and
three `l4` nodes with one Ada Lovelace GPU each; pods claim GPUs through
ResourceClaimTemplates with CEL selectors, as the platform's engines do. The
pods run an image the fleet does not simulate, so they turn Running without a
process: these tests are about placement and claims.
"""

from __future__ import annotations

import pytest
from modelplane_localfleet.cluster import Cluster

from e2e.kube import Json, apply, condition, get, items, wait_for

pytestmark = pytest.mark.usefixtures("local_fleet")

HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
NO_SUCH_GPU = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("200Gi")) >= 0'


def claim_template(name: str, namespace: str, selector: str, count: int = 1) -> Json:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "spec": {
                "devices": {
                    "requests": [
                        {
                            "name": "gpu",
                            "exactly": {
                                "deviceClassName": "gpu.nvidia.com",
                                "allocationMode": "ExactCount",
                                "count": count,
                                "selectors": [{"cel": {"expression": selector}}],
                            },
                        }
                    ]
                }
            }
        },
    }


def gpu_pod(name: str, namespace: str, template: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"test": "dra"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": template}],
            "containers": [
                {
                    "name": "main",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"claims": [{"name": "gpu"}]},
                }
            ],
        },
    }


def node_pools(east: Cluster) -> dict[str, str]:
    """Pool of each pool node (the system node belongs to none)."""
    return {
        n["metadata"]["name"]: n["metadata"]["labels"]["modelplane.ai/pool"]
        for n in items(east, "nodes", "-l", "modelplane.ai/pool")
    }


def running(east: Cluster, namespace: str) -> list[Json]:
    pods = items(east, "pods", "-n", namespace)
    return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]


def running_exactly(east: Cluster, namespace: str, count: int) -> list[Json] | None:
    found = running(east, namespace)
    return found if len(found) == count else None


def claim_of(east: Cluster, namespace: str, pod: Json) -> Json:
    statuses = pod["status"].get("resourceClaimStatuses") or []
    assert statuses, f"pod {pod['metadata']['name']} has no resourceClaimStatuses"
    return get(east, "resourceclaim", "-n", namespace, statuses[0]["resourceClaimName"])


def test_a_cel_selector_binds_a_device_of_the_matching_pool(
    east: Cluster, east_namespace: str
) -> None:
    apply(
        east,
        claim_template("hopper", east_namespace, HOPPER),
        gpu_pod("p", east_namespace, "hopper"),
    )
    pod = wait_for("pod p Running", lambda: next(iter(running(east, east_namespace)), None))
    node = pod["spec"]["nodeName"]
    assert node_pools(east)[node] == "h100"
    assert pod["status"]["podIP"].startswith("10.244.")
    assert condition(pod, "Ready")["status"] == "True"
    results = claim_of(east, east_namespace, pod)["status"]["allocation"]["devices"]["results"]
    assert [(r["driver"], r["pool"], r["request"]) for r in results] == [
        ("gpu.nvidia.com", node, "gpu")
    ]
    assert results[0]["device"] in ("gpu-0", "gpu-1")


def test_a_selector_no_device_satisfies_leaves_the_pod_pending_with_the_schedulers_reason(
    east: Cluster, east_namespace: str
) -> None:
    apply(
        east,
        claim_template("huge", east_namespace, NO_SUCH_GPU),
        gpu_pod("p", east_namespace, "huge"),
    )

    def unschedulable() -> Json | None:
        pod = get(east, "pod", "-n", east_namespace, "p")
        scheduled = condition(pod, "PodScheduled")
        return pod if scheduled.get("reason") == "Unschedulable" else None

    pod = wait_for("the scheduler to give up on pod p", unschedulable)
    assert pod["status"]["phase"] == "Pending"
    message = condition(pod, "PodScheduled")["message"]
    assert "cannot allocate all claims" in message, message


def test_only_as_many_pods_as_devices_bind_and_a_deleted_pod_frees_its_device(
    east: Cluster, east_namespace: str
) -> None:
    pods = [gpu_pod(f"p{i}", east_namespace, "hopper") for i in range(5)]
    apply(east, claim_template("hopper", east_namespace, HOPPER), *pods)
    bound = wait_for("four pods Running", lambda: running_exactly(east, east_namespace, 4))
    pending = [
        p
        for p in items(east, "pods", "-n", east_namespace)
        if p["status"].get("phase") == "Pending"
    ]
    assert len(pending) == 1
    devices = {
        (r["pool"], r["device"])
        for p in bound
        for r in claim_of(east, east_namespace, p)["status"]["allocation"]["devices"]["results"]
    }
    assert len(devices) == 4, devices
    assert {node_pools(east)[p["spec"]["nodeName"]] for p in bound} == {"h100"}
    victim = bound[0]["metadata"]["name"]
    east.kubectl("delete", "pod", "-n", east_namespace, victim, "--wait=true", "--timeout=60s")
    waiting = pending[0]["metadata"]["name"]
    wait_for(
        f"pod {waiting} to take the freed device",
        lambda: get(east, "pod", "-n", east_namespace, waiting)["status"].get("phase") == "Running",
    )


def test_two_pods_that_each_need_a_whole_node_never_share_one(
    east: Cluster, east_namespace: str
) -> None:
    apply(
        east,
        claim_template("two-hoppers", east_namespace, HOPPER, count=2),
        gpu_pod("a", east_namespace, "two-hoppers"),
        gpu_pod("b", east_namespace, "two-hoppers"),
    )
    bound = wait_for("both pods Running", lambda: running_exactly(east, east_namespace, 2))
    nodes = [p["spec"]["nodeName"] for p in bound]
    assert len(set(nodes)) == 2, nodes
    for pod in bound:
        results = claim_of(east, east_namespace, pod)["status"]["allocation"]["devices"]["results"]
        assert sorted(r["device"] for r in results) == ["gpu-0", "gpu-1"]
        assert {r["pool"] for r in results} == {pod["spec"]["nodeName"]}
