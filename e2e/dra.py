"""GPU pods made directly on an inference cluster, and what the cluster allocated to them.

`claim_template` and `gpu_pod` build a ResourceClaimTemplate claiming `count`
devices of class `gpu.nvidia.com` and a pod claiming it (an image the fleet does
not simulate: enough to be bound). `allocated` reads back every allocated claim of
a namespace as (pod, node of the pod, slice pool, device); the node agent names
each node's slice pool after the node, so a device belongs to the node its pool
names. `devices_per_node` counts each node's GPUs from its ResourceSlices.
"""

from __future__ import annotations

from typing import NamedTuple

from modelplane_localfleet.cluster import Cluster

from e2e.kube import Json, items

GPU = "gpu.nvidia.com"  # the simulated GPUs' driver and DeviceClass


def claim_template(name: str, namespace: str, count: int) -> Json:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"spec": {"devices": {"requests": [
            {"name": "gpu", "exactly": {"deviceClassName": GPU, "count": count}}
        ]}}},
    }  # fmt: skip


def gpu_pod(
    name: str, namespace: str, template: str, scheduler: str | None = None, cpu: str | None = None
) -> Json:
    """A pod claiming the devices of `template`, for `scheduler` (None: the default one),
    requesting `cpu` when given."""
    resources: Json = {"claims": [{"name": "gpu"}]}
    if cpu:
        resources["requests"] = {"cpu": cpu}
    spec: Json = {
        "terminationGracePeriodSeconds": 1,
        "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": template}],
        "containers": [
            {"name": "engine", "image": "example.invalid/engine:1", "resources": resources}
        ],
    }  # fmt: skip
    if scheduler:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}  # fmt: skip


class Allocated(NamedTuple):
    pod: str
    node: str | None  # where the pod is bound
    pool: str  # the device's slice pool: the node that has it
    device: str


def allocated(cluster: Cluster, namespace: str) -> list[Allocated]:
    """Every device allocated to a claim of the namespace, with the pod it is reserved for."""
    pods = items(cluster, "pods", "-n", namespace)
    nodes = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
    out = []
    for claim in items(cluster, "resourceclaims", "-n", namespace):
        status = claim.get("status") or {}
        users = [r["name"] for r in status.get("reservedFor") or () if r.get("resource") == "pods"]
        for result in ((status.get("allocation") or {}).get("devices") or {}).get("results") or ():
            for pod in users or ["<none>"]:
                out.append(Allocated(pod, nodes.get(pod), result["pool"], result["device"]))
    return out


def devices_per_node(cluster: Cluster) -> dict[str, int]:
    """GPUs each node publishes in its ResourceSlices."""
    counts: dict[str, int] = {}
    for found in items(cluster, "resourceslices"):
        spec = found["spec"]
        if spec.get("driver") == GPU and spec.get("nodeName"):
            counts[spec["nodeName"]] = counts.get(spec["nodeName"], 0) + len(spec["devices"])
    return counts
