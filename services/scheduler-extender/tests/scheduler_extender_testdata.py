"""Builders of the DRA objects the extender tests feed it (ResourceSlices, claims, pods)."""

from __future__ import annotations

from typing import Any

HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
CLASS = {
    "metadata": {"name": "gpu.nvidia.com"},
    "spec": {"selectors": [{"cel": {"expression": 'device.driver == "gpu.nvidia.com"'}}]},
}
CLASSES = {"gpu.nvidia.com": CLASS}


def gpu_slice(node: str, count: int, architecture: str = "Hopper") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{node}-gpu"},
        "spec": {
            "driver": "gpu.nvidia.com",
            "nodeName": node,
            "pool": {"name": node},
            "devices": [
                {"name": f"gpu-{i}", "attributes": {"architecture": {"string": architecture}}}
                for i in range(count)
            ],
        },
    }


def nic_slice(node: str, count: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{node}-nic"},
        "spec": {
            "driver": "nic.example.com",
            "nodeName": node,
            "pool": {"name": node},
            "devices": [{"name": f"nic-{i}"} for i in range(count)],
        },
    }


def claim(name: str, node: str, devices: list[int], pod_uid: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"devices": {"requests": [request("gpu", len(devices))]}},
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {"request": "gpu", "driver": "gpu.nvidia.com", "pool": node,
                         "device": f"gpu-{i}"}
                        for i in devices
                    ]
                }
            },
            "reservedFor": [{"resource": "pods", "name": "p", "uid": pod_uid}],
        },
    }  # fmt: skip


def request(name: str, count: int, *selectors: str, mode: str = "ExactCount") -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": "gpu.nvidia.com", "allocationMode": mode}
    if mode == "ExactCount":
        exactly["count"] = count
    if selectors:
        exactly["selectors"] = [{"cel": {"expression": s}} for s in selectors]
    return {"name": name, "exactly": exactly}


def template(name: str, *requests: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"spec": {"devices": {"requests": list(requests)}}},
    }


def pod(name: str, *templates: str) -> dict[str, Any]:
    """A pod claiming one claim per template (claims named c0, c1, ...), uid `uid-NAME`."""
    return {
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}"},
        "spec": {
            "resourceClaims": [
                {"name": f"c{i}", "resourceClaimTemplateName": t} for i, t in enumerate(templates)
            ]
        },
    }
