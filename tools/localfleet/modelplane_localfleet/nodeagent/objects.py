"""The Kubernetes objects a node agent publishes, built from its config (pure).

- `node` and `node_status`: a Node per pool node, labelled with its pool, with a
  podCIDR, an InternalIP, allocatable cpu, memory and pods, and a Ready
  condition; no taints.
- `lease`: the node's heartbeat in `kube-node-lease`, renewed every few seconds so
  the node lifecycle controller keeps the node Ready.
- `device_classes`: one DeviceClass per `deviceClassName` of the fleet's `claim:
  DRA` devices, selecting the devices of its driver(s).
- `resource_slices`: one ResourceSlice per node and driver listing `count`
  devices per class device (`gpu-0`, `gpu-1`, ...) with the class's attributes
  and capacity exactly as declared, owned by the Node so they go with it.
- `event`: a core/v1 Event about one object (the agent's pod events; the harness's
  provisioner's claim events).
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from modelplane.wellknown import SYSTEM_NODE_LABEL

from modelplane_localfleet.nodeagent.config import AGENT_LABEL, POOL_LABEL, ClassDevice, NodePlan

KUBELET_VERSION = "v1.36.3"
NODE_PODS = 110
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
RESOURCE_API = "resource.k8s.io/v1"


def timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(
    involved: dict[str, Any],
    kind: str,
    reason: str,
    message: str,
    component: str,
    host: str,
    now: datetime.datetime,
) -> dict[str, Any]:
    """An Event of type `kind` (Normal, Warning) about `involved` (an object as listed)."""
    meta = involved["metadata"]
    at = timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", "v1"), "kind": involved["kind"],
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
        },
        "type": kind, "reason": reason, "message": message[:1024],
        "source": {"component": component, "host": host},
        "firstTimestamp": at, "lastTimestamp": at, "count": 1,
        "reportingComponent": component, "reportingInstance": host,
    }  # fmt: skip


def max_pods(plan: NodePlan) -> int:
    return min(NODE_PODS, len(plan.pod_addresses()))


def node(plan: NodePlan, cluster: str) -> dict[str, Any]:
    """The Node of `plan`: a pool node carries its pool and class, a system node
    `modelplane.ai/system=true` only."""
    placement = (
        {SYSTEM_NODE_LABEL: "true"}
        if plan.pool.system
        else {POOL_LABEL: plan.pool.name, "modelplane.ai/inference-class": plan.pool.class_name}
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": plan.name,
            "labels": {
                **placement,
                AGENT_LABEL: cluster,
                "kubernetes.io/hostname": plan.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {"podCIDR": plan.pod_cidr, "podCIDRs": [plan.pod_cidr]},
    }


def node_status(
    plan: NodePlan, now: datetime.datetime, started: datetime.datetime
) -> dict[str, Any]:
    """The status subresource: addresses, capacity, conditions with `now` as heartbeat."""
    resources = {"cpu": plan.pool.cpu, "memory": plan.pool.memory, "pods": str(max_pods(plan))}
    beat, since = timestamp(now), timestamp(started)

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": since,
        }

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": plan.name},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": plan.address},
                {"type": "Hostname", "address": plan.name},
            ],
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "simulated"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "simulated"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "simulated"),
                condition("Ready", "True", "KubeletReady", "modelplane node agent is posting"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": plan.name,
                "systemUUID": plan.name,
                "bootID": since,
                "kernelVersion": "simulated",
                "osImage": "modelplane local fleet",
                "containerRuntimeVersion": "modelplane-localfleet://1",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def lease(plan: NodePlan, now: datetime.datetime) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": plan.name, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": plan.name,
            "leaseDurationSeconds": LEASE_DURATION_S,
            "renewTime": micro_timestamp(now),
        },
    }


def dra_devices(devices: Iterable[ClassDevice]) -> list[ClassDevice]:
    return [d for d in devices if d.claim == "DRA"]


def device_classes(all_devices: Iterable[ClassDevice]) -> list[dict[str, Any]]:
    """One DeviceClass per deviceClassName, selecting by driver."""
    drivers: dict[str, set[str]] = defaultdict(set)
    for device in dra_devices(all_devices):
        drivers[device.device_class_name or device.driver].add(device.driver)
    out = []
    for name, names in sorted(drivers.items()):
        expression = " || ".join(f'device.driver == "{d}"' for d in sorted(names))
        out.append(
            {
                "apiVersion": RESOURCE_API,
                "kind": "DeviceClass",
                "metadata": {"name": name},
                "spec": {"selectors": [{"cel": {"expression": expression}}]},
            }
        )
    return out


def slice_name(node_name: str, driver: str) -> str:
    return f"{node_name}-{re.sub(r'[^a-z0-9-]+', '-', driver.lower())}"[:253].strip("-")


def resource_slices(plan: NodePlan, node_uid: str) -> list[dict[str, Any]]:
    """One slice per driver of the node's pool, its devices numbered per class device."""
    by_driver: dict[str, list[ClassDevice]] = defaultdict(list)
    for device in dra_devices(plan.pool.devices):
        by_driver[device.driver].append(device)
    return [
        {
            "apiVersion": RESOURCE_API,
            "kind": "ResourceSlice",
            "metadata": {
                "name": slice_name(plan.name, driver),
                "labels": {POOL_LABEL: plan.pool.name},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": plan.name, "uid": node_uid}
                ],
            },
            "spec": {
                "driver": driver,
                "nodeName": plan.name,
                "pool": {"name": plan.name, "generation": 1, "resourceSliceCount": 1},
                "devices": _slice_devices(devices),
            },
        }
        for driver, devices in sorted(by_driver.items())
    ]


def _slice_devices(devices: Sequence[ClassDevice]) -> list[dict[str, Any]]:
    out = []
    for device in devices:
        described = device.to_dict()
        for i in range(device.count):
            entry: dict[str, Any] = {"name": f"{device.name}-{i}"}
            if described.get("attributes"):
                entry["attributes"] = described["attributes"]
            if described.get("capacity"):
                entry["capacity"] = described["capacity"]
            out.append(entry)
    return out
