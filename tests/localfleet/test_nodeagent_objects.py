"""What the node agent publishes: nodes per pool with ranges, DeviceClasses, ResourceSlices."""

from __future__ import annotations

import pytest
from modelplane_localfleet.nodeagent.config import AgentConfig, ClassDevice, PoolHardware
from modelplane_localfleet.nodeagent.objects import device_classes, node, resource_slices

GPU = ClassDevice.from_dict(
    {
        "name": "gpu",
        "driver": "gpu.nvidia.com",
        "deviceClassName": "gpu.nvidia.com",
        "count": 2,
        "attributes": {"architecture": {"string": "Hopper"}, "cc": {"version": "9.0.0"}},
        "capacity": {"memory": {"value": "81559Mi"}},
    }
)
EFA = ClassDevice.from_dict(
    {"name": "efa", "driver": "dra.net", "deviceClassName": "efa.networking.k8s.aws", "count": 1}
)
NIC = ClassDevice.from_dict({"name": "nic", "claim": "Synthetic", "driver": "nic.nvidia.com"})


def _config(*pools: PoolHardware) -> AgentConfig:
    return AgentConfig("east", "10.244.16.0/20", "10.240.0.2", 10248, pools)


def test_nodes_split_the_cluster_range_and_are_named_by_cluster_pool_and_index() -> None:
    config = _config(PoolHardware("h100", "h100-8x", 2, (GPU,)), PoolHardware("cpu", "none", 1, ()))
    plans = config.nodes()
    assert [(p.name, p.pod_cidr, p.address) for p in plans] == [
        ("east-h100-0", "10.244.16.0/22", "10.244.16.1"),
        ("east-h100-1", "10.244.20.0/22", "10.244.20.1"),
        ("east-cpu-0", "10.244.24.0/22", "10.244.24.1"),
    ]
    assert plans[0].pod_addresses()[:2] == ["10.244.16.2", "10.244.16.3"]
    assert node(plans[0], "east")["metadata"]["labels"]["modelplane.ai/pool"] == "h100"
    assert node(plans[0], "east")["spec"] == {
        "podCIDR": "10.244.16.0/22",
        "podCIDRs": ["10.244.16.0/22"],
    }


def test_too_many_nodes_for_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"65 nodes do not fit in 10\.244\.16\.0/20"):
        _config(PoolHardware("big", "c", 65, ())).nodes()


def test_device_classes_select_by_driver_and_skip_synthetic_devices() -> None:
    assert device_classes([GPU, EFA, NIC, GPU]) == [
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": "efa.networking.k8s.aws"},
            "spec": {"selectors": [{"cel": {"expression": 'device.driver == "dra.net"'}}]},
        },
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": "gpu.nvidia.com"},
            "spec": {"selectors": [{"cel": {"expression": 'device.driver == "gpu.nvidia.com"'}}]},
        },
    ]


def test_one_slice_per_node_and_driver_with_count_devices_exactly_as_declared() -> None:
    plan = _config(PoolHardware("h200", "h200-8x", 1, (GPU, EFA, NIC))).nodes()[0]
    slices = resource_slices(plan, "uid-1")
    assert [(s["metadata"]["name"], s["spec"]["driver"]) for s in slices] == [
        ("east-h200-0-dra-net", "dra.net"),
        ("east-h200-0-gpu-nvidia-com", "gpu.nvidia.com"),
    ]
    gpu_slice = slices[1]
    assert gpu_slice["spec"]["nodeName"] == "east-h200-0"
    assert gpu_slice["spec"]["pool"] == {
        "name": "east-h200-0",
        "generation": 1,
        "resourceSliceCount": 1,
    }
    assert gpu_slice["spec"]["devices"] == [
        {
            "name": f"gpu-{i}",
            "attributes": {"architecture": {"string": "Hopper"}, "cc": {"version": "9.0.0"}},
            "capacity": {"memory": {"value": "81559Mi"}},
        }
        for i in range(2)
    ]
    assert slices[0]["spec"]["devices"] == [{"name": "efa-0"}]
    assert gpu_slice["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_the_config_survives_its_json_form() -> None:
    config = _config(PoolHardware("h100", "h100-8x", 2, (GPU, NIC)))
    assert AgentConfig.from_json(config.to_json()) == config


def test_a_system_node_is_labelled_system_and_belongs_to_no_pool() -> None:
    system = PoolHardware("system", "system", 1, (), cpu="8", memory="32Gi", system=True)
    plans = _config(PoolHardware("h100", "h100-8x", 1, (GPU,)), system).nodes()
    labels = node(plans[1], "east")["metadata"]["labels"]
    assert plans[1].name == "east-system-0"
    assert labels["modelplane.ai/system"] == "true"
    assert "modelplane.ai/pool" not in labels
    assert resource_slices(plans[1], "uid-2") == []
    assert "modelplane.ai/system" not in node(plans[0], "east")["metadata"]["labels"]
    config = _config(system)
    assert AgentConfig.from_json(config.to_json()) == config
