"""Service networking: per-cluster Service ranges, the kubernetes endpoints, kube-proxy's config."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from modelplane_localfleet import addons, servicenet
from modelplane_localfleet.layout import CLUSTER_RANGE, MAX_CLUSTERS, POD_SUPERNET, ClusterPlan

CONTROL = ClusterPlan("control", 0, "control")
EAST = ClusterPlan("east", 1, "inference")


def test_each_cluster_has_its_own_service_range_clear_of_the_other_ranges() -> None:
    ranges = [
        ipaddress.ip_network(ClusterPlan(f"c{i}", i, "inference").service_cidr)
        for i in range(MAX_CLUSTERS)
    ]
    assert ranges[0] == ipaddress.ip_network("10.96.0.0/16")
    assert ranges[1] == ipaddress.ip_network("10.97.0.0/16")
    assert len(set(ranges)) == MAX_CLUSTERS
    for network in ranges:
        assert not network.overlaps(CLUSTER_RANGE)
        assert not network.overlaps(POD_SUPERNET)
    assert CONTROL.kubernetes_service_ip == "10.96.0.1"
    assert EAST.kubernetes_service_ip == "10.97.0.1"


def test_the_kubernetes_service_endpoints_are_the_apiserver_address() -> None:
    endpoints, endpoint_slice = servicenet.kubernetes_endpoints(EAST)
    assert endpoints["subsets"] == [
        {
            "addresses": [{"ip": "10.240.0.2"}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
        }
    ]
    assert endpoints["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
    assert endpoint_slice["endpoints"] == [
        {"addresses": ["10.240.0.2"], "conditions": {"ready": True}}
    ]
    assert endpoint_slice["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]


def test_kube_proxy_runs_nftables_on_its_cluster_address_and_leaves_global_sysctls_alone() -> None:
    config = servicenet.kube_proxy_config(
        CONTROL, Path("/s/kube-proxy.kubeconfig"), "control-system-0"
    )
    assert config["mode"] == "nftables"
    assert config["hostnameOverride"] == "control-system-0"
    assert config["clientConnection"] == {"kubeconfig": "/s/kube-proxy.kubeconfig"}
    assert config["healthzBindAddress"] == "10.240.0.1:10256"
    assert config["metricsBindAddress"] == "10.240.0.1:10249"
    assert config["conntrack"]["maxPerCore"] == 0
    assert "clusterCIDR" not in config  # no masquerading: everything is local
    assert servicenet.kube_proxy_probe_url(CONTROL) == "http://10.240.0.1:10256/livez"


def test_kube_proxy_and_its_identity_are_the_control_clusters_only() -> None:
    assert addons.users(CONTROL)["kube-proxy"] == "system:kube-proxy"
    assert "kube-proxy" not in addons.users(EAST)
    assert addons.users(EAST)["node-agent"] == addons.users(CONTROL)["node-agent"]


def test_the_system_pool_is_two_cpu_nodes_without_devices() -> None:
    pool = addons.SYSTEM_POOL
    assert (pool.name, pool.node_count, pool.cpu, pool.memory, pool.devices) == (
        "system",
        2,
        "16",
        "64Gi",
        (),
    )
