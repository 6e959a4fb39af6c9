"""What one node agent simulates: its cluster's pools, nodes, devices and address ranges.

The harness writes an `AgentConfig` as JSON when it starts a cluster; the agent
reads it back. Node names, node pod ranges and node addresses are derived here
and nowhere else: pool `p` of cluster `c` has nodes `c-p-0`, `c-p-1`, ...; the
cluster's pod range is split evenly between its nodes (at least a /26 each, so
every node has room for its pods); a node's own address is the first host of
its range and its pods get the following ones.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_NODE_PREFIX = 26
NODE_CPU = "64"
NODE_MEMORY = "512Gi"
POOL_LABEL = "modelplane.ai/pool"
AGENT_LABEL = "modelplane.ai/local-node-agent"


@dataclass(frozen=True, slots=True)
class ClassDevice:
    """One entry of an InferenceClass's `spec.devices`, read from its dict form.

    `attributes` and `capacity` stay as the class writes them, which is also how a
    ResourceSlice publishes them.
    """

    name: str
    driver: str
    claim: str = "DRA"
    count: int = 1
    device_class_name: str | None = None
    attributes: Mapping[str, Any] | None = None
    capacity: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassDevice:
        return cls(
            data["name"],
            data["driver"],
            data.get("claim", "DRA"),
            int(data.get("count", 1)),
            data.get("deviceClassName"),
            data.get("attributes"),
            data.get("capacity"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "claim": self.claim, "driver": self.driver}
        if self.device_class_name is not None:
            out["deviceClassName"] = self.device_class_name
        out["count"] = self.count
        if self.attributes is not None:
            out["attributes"] = dict(self.attributes)
        if self.capacity is not None:
            out["capacity"] = dict(self.capacity)
        return out


@dataclass(frozen=True, slots=True)
class PoolHardware:
    """A node pool as the fleet file declares it, with its class's devices; `system`: the
    cluster's CPU nodes for platform pods (labelled `modelplane.ai/system=true`, no pool
    label, so no node pool counts them)."""

    name: str
    class_name: str
    node_count: int
    devices: tuple[ClassDevice, ...]
    cpu: str = NODE_CPU
    memory: str = NODE_MEMORY
    system: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "className": self.class_name,
            "nodeCount": self.node_count,
            "devices": [d.to_dict() for d in self.devices],
            "cpu": self.cpu,
            "memory": self.memory,
            "system": self.system,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoolHardware:
        return cls(
            data["name"],
            data["className"],
            int(data["nodeCount"]),
            tuple(ClassDevice.from_dict(d) for d in data["devices"]),
            str(data.get("cpu", NODE_CPU)),
            str(data.get("memory", NODE_MEMORY)),
            bool(data.get("system", False)),
        )


@dataclass(frozen=True, slots=True)
class NodePlan:
    """One simulated node: its name, pool, pod range and own address."""

    name: str
    pool: PoolHardware
    index: int
    pod_cidr: str

    @property
    def address(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr)[1])

    def pod_addresses(self) -> list[str]:
        """Addresses pods on this node may get, in the order they are handed out."""
        network = ipaddress.ip_network(self.pod_cidr)
        return [str(a) for a in list(network.hosts())[1:]]


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything the agent of one cluster needs to know at start.

    `apiserver` is `address:port` of the cluster's apiserver; `routes_cluster_ips`
    says whether a kube-proxy serves the cluster's ClusterIPs in the namespace (the
    control cluster's): if not, pods reach the apiserver at its own address."""

    cluster: str
    pod_cidr: str
    health_address: str
    health_port: int
    pools: tuple[PoolHardware, ...]
    apiserver: str = ""
    routes_cluster_ips: bool = False

    def nodes(self) -> list[NodePlan]:
        """Every node of every pool, each with its own slice of the cluster's pod range."""
        names = [(pool, i) for pool in self.pools for i in range(pool.node_count)]
        if not names:
            return []
        network = ipaddress.ip_network(self.pod_cidr)
        prefix = network.prefixlen + max(0, math.ceil(math.log2(len(names))))
        if prefix > MAX_NODE_PREFIX:
            raise ValueError(
                f"cluster {self.cluster}: {len(names)} nodes do not fit in {self.pod_cidr} "
                f"with at least a /{MAX_NODE_PREFIX} each"
            )
        ranges = network.subnets(new_prefix=prefix)
        return [
            NodePlan(f"{self.cluster}-{pool.name}-{i}", pool, i, str(cidr))
            for (pool, i), cidr in zip(names, ranges, strict=False)
        ]

    def to_json(self) -> str:
        return json.dumps(
            {
                "cluster": self.cluster,
                "podCIDR": self.pod_cidr,
                "health": {"address": self.health_address, "port": self.health_port},
                "pools": [p.to_dict() for p in self.pools],
                "apiserver": self.apiserver,
                "routesClusterIPs": self.routes_cluster_ips,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> AgentConfig:
        data = json.loads(text)
        return cls(
            data["cluster"],
            data["podCIDR"],
            data["health"]["address"],
            int(data["health"]["port"]),
            tuple(PoolHardware.from_dict(p) for p in data["pools"]),
            data.get("apiserver", ""),
            bool(data.get("routesClusterIPs", False)),
        )


def load(path: Path) -> AgentConfig:
    return AgentConfig.from_json(path.read_text())
