"""Small valid objects of every kind, and edits that break them one field at a time.

Guarantees: ``valid(kind)`` returns a fresh, minimal object that validates;
``edited`` applies ``set``/``delete`` edits addressed by field paths in the
validator's own notation (``spec.engines[0].members[1].worker``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

API = "modelplane.ai/v1alpha1"

TEMPLATE: dict[str, Any] = {
    "spec": {"containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.23.0"}]}
}
GPU_REQUEST: dict[str, Any] = {
    "name": "gpu",
    "count": 1,
    "selectors": [
        {"cel": 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'}
    ],
}


def member(role: str = "Standalone", **extra: Any) -> dict[str, Any]:
    return {
        "role": role,
        "nodeSelector": {"devices": [copy.deepcopy(GPU_REQUEST)]},
        "template": copy.deepcopy(TEMPLATE),
        **extra,
    }


def engine(name: str, *members: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "members": list(members) or [member()], **extra}


GANG = [member("Leader"), member("Worker", worker={"nodes": 1})]

_BASE: dict[str, dict[str, Any]] = {
    "InferenceClass": {
        "metadata": {"name": "h100"},
        "spec": {
            "description": "8x H100",
            "provisioning": {"provider": "GKE", "gke": {"machineType": "a3-highgpu-8g"}},
            "devices": [
                {
                    "name": "gpu",
                    "driver": "gpu.nvidia.com",
                    "deviceClassName": "gpu.nvidia.com",
                    "count": 8,
                    "attributes": {"architecture": {"string": "Hopper"}},
                    "capacity": {"memory": {"value": "81559Mi"}},
                },
                {"name": "nic", "claim": "Synthetic", "driver": "nic.nvidia.com", "count": 8},
            ],
        },
    },
    "InferenceCluster": {
        "metadata": {"name": "gke-us", "labels": {"modelplane.ai/region": "us"}},
        "spec": {
            "cluster": {"source": "GKE", "gke": {"project": "p", "region": "us-central1"}},
            "nodePools": [
                {
                    "name": "gpu-l4",
                    "className": "l4",
                    "nodeCount": 1,
                    "minNodeCount": 0,
                    "maxNodeCount": 4,
                    "zones": ["us-central1-a"],
                },
            ],
        },
    },
    "InferenceGateway": {
        "metadata": {"name": "default"},
        "spec": {
            "backend": "Traefik",
            "traefik": {
                "version": "40.2.0",
                "loadBalancer": "MetalLB",
                "metallb": {"addressPool": "10.0.0.1-10.0.0.9"},
            },
        },
    },
    "ModelDeployment": {
        "metadata": {"name": "qwen", "namespace": "ml-team"},
        "spec": {"replicas": 1, "engines": [engine("qwen")]},
    },
    "ModelReplica": {
        "metadata": {"name": "qwen-gke-us-0", "namespace": "ml-team"},
        "spec": {
            "clusterName": "gke-us",
            "deploymentName": "qwen",
            "index": 0,
            "engines": [
                {
                    "name": "qwen",
                    "nodePoolName": "gpu-l4",
                    "nodeCost": 1,
                    "members": [
                        {
                            "role": "Standalone",
                            "nodePoolName": "gpu-l4",
                            "template": TEMPLATE,
                            "deviceRequests": [
                                {"name": "gpu", "count": 1, "deviceClassName": "gpu.nvidia.com"}
                            ],
                        }
                    ],
                },
            ],
        },
    },
    "ModelService": {
        "metadata": {"name": "qwen", "namespace": "ml-team"},
        "spec": {
            "endpoints": [{"selector": {"matchLabels": {"modelplane.ai/deployment": "qwen"}}}]
        },
    },
    "ModelEndpoint": {
        "metadata": {"name": "together", "namespace": "ml-team"},
        "spec": {"url": "https://api.together.xyz/", "rewritePath": "/"},
    },
    "ModelCache": {
        "metadata": {"name": "qwen", "namespace": "ml-team"},
        "spec": {
            "source": "HuggingFace",
            "huggingFace": {
                "repo": "Qwen/Qwen3-8B",
                "sizeGiB": 20,
                "authSecret": {"name": "hf-token"},
            },
        },
    },
}


def valid(kind: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, **copy.deepcopy(_BASE[kind])}


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [int(i) if i else name for name, i in _STEP.findall(path)]


@dataclass(frozen=True)
class Set:
    path: str
    value: Any


@dataclass(frozen=True)
class Delete:
    path: str


Edit = Set | Delete


def edited(obj: dict[str, Any], *edits: Edit) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for e in edits:
        *parents, last = _steps(e.path)
        node: Any = out
        for step in parents:
            node = node[step]
        if isinstance(e, Set):
            if isinstance(last, int) and last == len(node):
                node.append(copy.deepcopy(e.value))
            else:
                node[last] = copy.deepcopy(e.value)
        else:
            del node[last]
    return out
