"""Where everything of a local fleet lives: addresses, pod ranges, ports and files.

Pure decisions, no I/O except reading and writing `fleet.json`:

- The network namespace is named from the state directory's absolute path, so any
  later command (including `down` after a crashed harness) finds it again.
- Cluster `index` 0 is the control cluster; inference clusters take the lowest
  free index, kept for the cluster's life, so a removed cluster's neighbours never
  move. A cluster's address is the index-th host of `CLUSTER_RANGE`, and every
  cluster uses the same port numbers on its own address (nothing collides).
- Each cluster owns one /20 of `POD_SUPERNET` for its nodes' pod ranges, so pod IPs
  of different clusters never overlap (64 clusters at most).
- Each cluster owns one /16 service range, `10.(96+index).0.0/16`: the control
  cluster's `10.96.0.0/16` is the only one routed in the namespace (its
  kube-proxy serves it), so an inference cluster's ClusterIP never lands on a
  control cluster Service.
- The state directory holds one folder per concern, each with one entry per
  cluster: `kubeconfig/<name>.yaml`, `pki/<name>/`, `etcd/<name>/`,
  `config/<name>/`, `run/<name>/<component>.json`, `logs/<name>/<component>.log`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

CONTROL = "control"
CLUSTER_RANGE = ipaddress.ip_network("10.240.0.0/16")
POD_SUPERNET = ipaddress.ip_network("10.244.0.0/14")
CLUSTER_POD_PREFIX = 20
MAX_CLUSTERS = 2 ** (CLUSTER_POD_PREFIX - POD_SUPERNET.prefixlen)
SERVICE_BASE = ipaddress.ip_network("10.96.0.0/16")
STATE_VERSION = 1

Role = Literal["control", "inference"]


@dataclass(frozen=True, slots=True)
class Ports:
    """The ports every cluster uses on its own address."""

    etcd: int = 2379
    etcd_peer: int = 2380
    apiserver: int = 6443
    controller_manager: int = 10257
    scheduler: int = 10259
    modelplane_scheduler: int = 10261  # inference clusters: the extension's kube-scheduler
    scheduler_extender: int = 10262  # inference clusters: modelplane-scheduler-extender
    rwx_provisioner: int = 10263  # inference clusters: the harness's RWX provisioner
    lws_webhook: int = 9443
    lws_health: int = 8081
    lws_metrics: int = 8443
    gateway_web: int = 80
    gateway_admin: int = 8082
    gateway_hop: int = 8001  # the control cluster's h2c hop (gateway-config --hop-port)
    node_agent_health: int = 10248
    kube_proxy_health: int = 10256
    kube_proxy_metrics: int = 10249


PORTS = Ports()


@dataclass(frozen=True, slots=True)
class Secret:
    """Where `up` stores an Existing cluster's kubeconfig in the control cluster."""

    name: str
    key: str = "kubeconfig"


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """One cluster of the fleet and the fixed facts derived from its index."""

    name: str
    index: int
    role: Role
    secret: Secret | None = None

    @property
    def address(self) -> str:
        return str(CLUSTER_RANGE[self.index + 1])

    @property
    def pod_cidr(self) -> str:
        subnets = POD_SUPERNET.subnets(new_prefix=CLUSTER_POD_PREFIX)
        for i, subnet in enumerate(subnets):
            if i == self.index:
                return str(subnet)
        raise ValueError(f"cluster index {self.index} is beyond {MAX_CLUSTERS} clusters")

    @property
    def service_cidr(self) -> str:
        """This cluster's Service range: the index-th /16 from `SERVICE_BASE`."""
        step = SERVICE_BASE.num_addresses * self.index
        return str(ipaddress.ip_network((SERVICE_BASE.network_address + step, 16)))

    @property
    def kubernetes_service_ip(self) -> str:
        """The ClusterIP of `default/kubernetes`: the first address of the Service range."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @property
    def server(self) -> str:
        return f"https://{self.address}:{PORTS.apiserver}"


@dataclass(slots=True)
class FleetLayout:
    """The fleet's clusters by name, persisted as `fleet.json` in the state directory."""

    namespace: str
    clusters: dict[str, ClusterPlan] = field(default_factory=dict)

    def inference(self) -> list[ClusterPlan]:
        return sorted(
            (c for c in self.clusters.values() if c.role == "inference"), key=lambda c: c.index
        )

    def add(self, name: str, secret: Secret | None) -> ClusterPlan:
        """The cluster named `name`, planned at the lowest free index if it is new."""
        if name == CONTROL:
            raise ValueError(f"{CONTROL!r} is the control cluster's name; pick another")
        existing = self.clusters.get(name)
        if existing is not None:
            plan = ClusterPlan(name, existing.index, "inference", secret or existing.secret)
        else:
            taken = {c.index for c in self.clusters.values()}
            index = next(i for i in range(MAX_CLUSTERS + 1) if i not in taken)
            if index >= MAX_CLUSTERS:
                raise ValueError(f"the local fleet holds at most {MAX_CLUSTERS - 1} clusters")
            plan = ClusterPlan(name, index, "inference", secret)
        self.clusters[name] = plan
        return plan

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "namespace": self.namespace,
                "clusters": [asdict(c) for c in sorted(self.clusters.values(), key=_by_index)],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> FleetLayout:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"fleet.json has version {data.get('version')}, want {STATE_VERSION}")
        clusters = {}
        for c in data["clusters"]:
            secret = Secret(**c["secret"]) if c.get("secret") else None
            clusters[c["name"]] = ClusterPlan(c["name"], int(c["index"]), c["role"], secret)
        return cls(data["namespace"], clusters)


def _by_index(plan: ClusterPlan) -> int:
    return plan.index


def namespace_name(state: Path) -> str:
    """The network namespace of the fleet whose state lives in `state`."""
    digest = hashlib.sha256(str(state.resolve()).encode()).hexdigest()
    return f"mp-fleet-{digest[:8]}"


def new_layout(state: Path) -> FleetLayout:
    layout = FleetLayout(namespace_name(state))
    layout.clusters[CONTROL] = ClusterPlan(CONTROL, 0, "control")
    return layout


def load(state: Path) -> FleetLayout | None:
    path = state / "fleet.json"
    if not path.exists():
        return None
    return FleetLayout.from_json(path.read_text())


def save(state: Path, layout: FleetLayout) -> None:
    state.mkdir(parents=True, exist_ok=True)
    temporary = state / "fleet.json.tmp"
    temporary.write_text(layout.to_json() + "\n")
    temporary.replace(state / "fleet.json")
