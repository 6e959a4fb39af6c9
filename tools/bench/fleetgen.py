"""Synthetic fleets for the scheduler benchmark, as API manifests (dicts).

Deterministic for a given size and seed: cluster i gets 4 pools of classes
chosen round-robin, labels for region and tier, and a ledger of existing
replicas spread over the fleet.
"""

from __future__ import annotations

import random
from typing import Any

CLASSES: list[dict[str, Any]] = [
    {"name": "l4-1x", "arch": "Ada Lovelace", "memory": "23034Mi", "count": 1},
    {"name": "a100-8x", "arch": "Ampere", "memory": "40960Mi", "count": 8},
    {"name": "h100-8x", "arch": "Hopper", "memory": "81559Mi", "count": 8},
    {"name": "h200-8x", "arch": "Hopper", "memory": "140Gi", "count": 8},
]
REGIONS = ["us-east", "us-west", "eu-central", "ap-south"]


def inference_class(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "InferenceClass",
        "metadata": {"name": spec["name"]},
        "spec": {
            "devices": [
                {
                    "name": "gpu",
                    "claim": "DRA",
                    "driver": "gpu.nvidia.com",
                    "deviceClassName": "gpu.nvidia.com",
                    "count": spec["count"],
                    "attributes": {"architecture": {"string": spec["arch"]}},
                    "capacity": {"memory": {"value": spec["memory"]}},
                },
                {
                    "name": "nic",
                    "claim": "Synthetic",
                    "driver": "nic.nvidia.com",
                    "count": 8,
                    "attributes": {"linkType": {"string": "infiniband"}},
                },
            ]
        },
    }


def inference_cluster(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "InferenceCluster",
        "metadata": {
            "name": f"cluster-{index:05d}",
            "labels": {
                "modelplane.ai/region": REGIONS[index % len(REGIONS)],
                "modelplane.ai/tier": "frontier" if index % 3 == 0 else "standard",
            },
        },
        "spec": {
            "cluster": {
                "source": "Existing",
                "existing": {"secretRef": {"name": f"kc-{index}", "key": "kubeconfig"}},
            },
            "nodePools": [
                {
                    "name": f"pool-{p}",
                    "className": CLASSES[(index + p) % len(CLASSES)]["name"],
                    "nodeCount": 8,
                }
                for p in range(4)
            ],
        },
    }


def deployment(
    name: str, memory: str = "40Gi", replicas: int = 3, gang: bool = False
) -> dict[str, Any]:
    selector = {
        "cel": f'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("{memory}")) >= 0'
    }
    request = {"name": "gpu", "count": 8 if gang else 1, "selectors": [selector]}
    template = {"spec": {"containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.23.0"}]}}
    if gang:
        members = [
            {"role": "Leader", "nodeSelector": {"devices": [request]}, "template": template},
            {
                "role": "Worker",
                "worker": {"nodes": 1},
                "nodeSelector": {"devices": [request]},
                "template": template,
            },
        ]
    else:
        members = [
            {"role": "Standalone", "nodeSelector": {"devices": [request]}, "template": template}
        ]
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"replicas": replicas, "engines": [{"name": "engine", "members": members}]},
    }


def existing_replicas(clusters: int, count: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` replicas of background deployments, 1 node each, spread over the fleet."""
    rnd = random.Random(seed)
    replicas = []
    for i in range(count):
        cluster = rnd.randrange(clusters)
        pool = rnd.randrange(4)
        name = f"background-{i % 200}"
        index = i // 200
        replicas.append(
            {
                "apiVersion": "modelplane.ai/v1alpha1",
                "kind": "ModelReplica",
                "metadata": {
                    "name": f"{name}-cluster-{cluster:05d}-{index}",
                    "namespace": "bench",
                    "labels": {"modelplane.ai/deployment": name},
                },
                "spec": {
                    "clusterName": f"cluster-{cluster:05d}",
                    "deploymentName": name,
                    "index": index,
                    "engines": [
                        {
                            "name": "engine",
                            "nodePoolName": f"pool-{pool}",
                            "nodeCost": 1,
                            "members": [{"role": "Standalone", "nodePoolName": f"pool-{pool}"}],
                        }
                    ],
                },
            }
        )
    return replicas


def fleet(clusters: int, replicas: int) -> list[dict[str, Any]]:
    return (
        [inference_class(c) for c in CLASSES]
        + [inference_cluster(i) for i in range(clusters)]
        + existing_replicas(clusters, replicas)
    )
