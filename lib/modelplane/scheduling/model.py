"""Plain values the fleet scheduler core reads and returns.

Everything here is frozen and hashable, holds no Kubernetes or gRPC object and
does no I/O, so the core is a pure function of these values. Adapters in
`modelplane.scheduling.snapshot` build them from API objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from modelplane.cel import Device
from modelplane.scheduling.taints import Taint, Toleration

Role = Literal["Standalone", "Leader", "Worker"]
Claim = Literal["DRA", "Synthetic"]
Labels = tuple[tuple[str, str], ...]
Accounting = Literal["Node", "Device"]
# (device class, count) per device class one pod claims on its node; () is a whole node.
PodShape = tuple[tuple[str, int], ...]


def labels_match(selector: Labels, labels: Labels) -> bool:
    """True when every selector key is present in `labels` with the same value."""
    have = dict(labels)
    return all(have.get(key) == value for key, value in selector)


def format_labels(labels: Labels) -> str:
    """`a=b,c=d`: the serialized label-selector form users already know."""
    return ",".join(f"{key}={value}" for key, value in labels)


# ---------------------------------------------------------------- deployments


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """One entry of a member's `nodeSelector.devices`: `count` devices matching all selectors."""

    name: str
    count: int
    selectors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Member:
    """One member of an engine; `worker_nodes` is only meaningful for a Worker."""

    role: Role
    requests: tuple[DeviceRequest, ...] = ()
    worker_nodes: int = 0

    @property
    def pods(self) -> int:
        """Pods one copy of this member runs: 1 for Standalone or Leader, `worker.nodes` else."""
        return self.worker_nodes if self.role == "Worker" else 1


@dataclass(frozen=True, slots=True)
class Engine:
    name: str
    members: tuple[Member, ...]
    copies: int = 1


@dataclass(frozen=True, slots=True)
class Deployment:
    namespace: str
    name: str
    replicas: int
    engines: tuple[Engine, ...]
    cluster_selector: Labels = ()
    cache_name: str | None = None
    tolerations: tuple[Toleration, ...] = ()


# ---------------------------------------------------------------------- fleet


@dataclass(frozen=True, slots=True)
class ClassDevice:
    """One device entry of an InferenceClass: `count` identical devices per node."""

    name: str
    claim: Claim
    count: int
    device: Device
    device_class_name: str | None = None


@dataclass(frozen=True, slots=True)
class HardwareClass:
    """An InferenceClass as the scheduler sees it: the devices one node of a pool carries."""

    name: str
    devices: tuple[ClassDevice, ...]


@dataclass(frozen=True, slots=True)
class Pool:
    """A node pool; `nodes` is its schedulable capacity (maxNodeCount when set)."""

    name: str
    class_name: str
    nodes: int


@dataclass(frozen=True, slots=True)
class Cluster:
    """An InferenceCluster; `ready` means Ready=True with a gateway address.

    `accounting` is how its pools' capacity is counted: `Node` (a whole node per pod
    that claims a device) or `Device` (devices per node, packed), which the cluster
    offers while its scheduler extension is healthy.

    Pools are kept in name order whatever order they were given in, so placement
    never depends on how a manifest lists them. `label_set` and `class_names`
    are derived once here, when the snapshot is built, not on every placement.
    """

    name: str
    pools: tuple[Pool, ...]
    labels: Labels = ()
    ready: bool = True
    not_ready_reason: str = ""
    taints: tuple[Taint, ...] = ()
    accounting: Accounting = "Node"
    label_set: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False)
    class_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pools", tuple(sorted(self.pools, key=lambda p: p.name)))
        object.__setattr__(self, "labels", tuple(sorted(self.labels)))
        object.__setattr__(self, "label_set", frozenset(self.labels))
        object.__setattr__(self, "class_names", frozenset(p.class_name for p in self.pools))


@dataclass(frozen=True, slots=True)
class Cache:
    namespace: str
    name: str
    cluster_selector: Labels = ()


@dataclass(frozen=True, slots=True)
class EnginePin:
    """Where one engine of an existing replica runs and the nodes charged for it; `pods`,
    when known, the shape of each of its pods that claims devices (else each of the
    `node_cost` pods counts as a whole node)."""

    engine: str
    pool: str
    node_cost: int
    pods: tuple[PodShape, ...] = ()


@dataclass(frozen=True, slots=True)
class Replica:
    """An existing ModelReplica: an input, never a decision."""

    namespace: str
    deployment: str
    index: int
    cluster: str
    engines: tuple[EnginePin, ...]
    name: str = ""


@dataclass(frozen=True)
class Fleet:
    """Everything observed that placement depends on, besides the deployment itself."""

    clusters: tuple[Cluster, ...] = ()
    classes: Mapping[str, HardwareClass] = field(default_factory=dict)
    replicas: tuple[Replica, ...] = ()
    caches: Mapping[tuple[str, str], Cache] = field(default_factory=dict)


# --------------------------------------------------------------------- output


@dataclass(frozen=True, slots=True)
class ResolvedRequest:
    """A device request resolved on the chosen pool to DRA devices of one device class."""

    name: str
    count: int
    device_class_name: str
    selectors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlacedMember:
    role: Role
    requests: tuple[ResolvedRequest, ...]
    node_cost: int


@dataclass(frozen=True, slots=True)
class PlacedEngine:
    engine: str
    pool: str
    node_cost: int
    members: tuple[PlacedMember, ...] = ()
    pods: tuple[PodShape, ...] = ()


@dataclass(frozen=True, slots=True)
class PlacedReplica:
    """One replica of the result: kept from before (`retained`) or newly placed."""

    index: int
    cluster: str
    engines: tuple[PlacedEngine, ...]
    retained: bool
    why: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class RemovedReplica:
    """An existing replica the placement deletes, and why."""

    replica: Replica
    why: str


@dataclass(frozen=True, slots=True)
class Placement:
    """The scheduler's answer for one deployment.

    `replicas` is the complete set that should exist, sorted by index; `removed`
    the existing replicas to delete; `unscheduled` how many wanted replicas fit
    nowhere, with `reasons` a person can act on. `error` is a user error (bad
    CEL, missing cache): then nothing is added or removed.
    """

    namespace: str
    name: str
    desired: int
    replicas: tuple[PlacedReplica, ...]
    removed: tuple[RemovedReplica, ...] = ()
    unscheduled: int = 0
    reasons: tuple[str, ...] = ()
    error: str | None = None
