"""Service networking of the local fleet: the `kubernetes` Service's endpoints and kube-proxy.

Every apiserver runs with `--endpoint-reconciler-type=none` (its own reconciler
fails on a namespace address), so `kubernetes_endpoints` is what it would write:
the Endpoints and EndpointSlice of `default/kubernetes` pointing at the
cluster's apiserver address and port. The Endpoints carry the
`endpointslice.kubernetes.io/skip-mirror` label, as the apiserver's own do, so
the mirroring controller leaves the slice to us.

kube-proxy runs on the control cluster only: all clusters share one network
namespace, and kube-proxy's nftables mode owns one table named `kube-proxy` per
address family (its iptables mode owns the shared `KUBE-*` chains), so a
second kube-proxy would delete the first one's rules on every sync. Inference
clusters do not need it: their traffic goes pod IP to pod IP (Traefik routes
to EndpointSlice addresses), and their pods reach their own apiserver at its
address (see the node agent's service environment). `kube_proxy_config` is its
`KubeProxyConfiguration`: nftables mode, bound to the cluster's address, on
the first system-pool node (kube-proxy waits up to 30 s for its Node), no
cluster CIDR (so ClusterIP traffic is DNATed, never masqueraded: everything is
local on the namespace's loopback) and no conntrack sysctls (they are global,
not the namespace's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelplane_localfleet.layout import PORTS, ClusterPlan

KUBE_PROXY_USER = "system:kube-proxy"  # bound to `system:node-proxier` by bootstrap RBAC
MANAGED_BY = "modelplane-localfleet"
PORT_NAME = "https"


def kubernetes_endpoints(plan: ClusterPlan) -> list[dict[str, Any]]:
    """Endpoints and EndpointSlice of `default/kubernetes`: the apiserver at its address."""
    return fixed_endpoints("default", "kubernetes", plan.address, PORT_NAME, PORTS.apiserver)


def fixed_endpoints(
    namespace: str, service: str, address: str, port_name: str, port: int
) -> list[dict[str, Any]]:
    """Endpoints and EndpointSlice of a selectorless Service: one ready `address:port`
    (a harness process), the port named as the Service's own so clients resolve it."""
    labels = {"endpointslice.kubernetes.io/skip-mirror": "true"}
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": service, "namespace": namespace, "labels": labels},
        "subsets": [
            {
                "addresses": [{"ip": address}],
                "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            }
        ],
    }
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": service,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    }
    return [endpoints, endpoint_slice]


def kube_proxy_config(plan: ClusterPlan, kubeconfig: Path, node: str) -> dict[str, Any]:
    """kube-proxy's configuration file for the cluster `plan`, running as on `node` (it
    waits for that Node to have addresses; it must be one the node agent registers)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "nftables",
        "hostnameOverride": node,
        "bindAddress": plan.address,
        "healthzBindAddress": f"{plan.address}:{PORTS.kube_proxy_health}",
        "metricsBindAddress": f"{plan.address}:{PORTS.kube_proxy_metrics}",
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "nodePortAddresses": [f"{plan.address}/32"],
    }


def kube_proxy_command(binary: Path, config: Path) -> list[str]:
    return [str(binary), f"--config={config}", "--v=1"]


def kube_proxy_probe_url(plan: ClusterPlan) -> str:
    """`/livez`: the proxier's own health (`/healthz` also wants a Node of its name)."""
    return f"http://{plan.address}:{PORTS.kube_proxy_health}/livez"
