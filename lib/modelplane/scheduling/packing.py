"""Per-node device packing: what the fleet ledger models on a pool in device accounting.

A pod's `PodShape` is how many devices of each device class it claims on its node
(`WHOLE_NODE`, the empty shape, stands for a pod known only to take a whole node:
a replica recorded without its device requests). A pool's `Nodes` is the free
devices of each of its nodes. `Nodes.pack(pods)` places the pods largest first,
each on the node that already has the largest share of the pod's device classes
in use and still fits it (ties: the lowest node), which is the rule the
cluster's scheduler extension follows (filter: the node's free devices cover the
claims; prioritize: most-allocated), so every node the model picks is one the
extender's filter accepts. Placing is all or nothing, and deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from modelplane.scheduling.model import ClassDevice, HardwareClass, PlacedMember, PodShape

WHOLE_NODE: PodShape = ()
Demand = tuple[PodShape, ...]


def device_class_of(device: ClassDevice) -> str:
    """The DeviceClass a DRA device of an InferenceClass is claimed through."""
    return device.device_class_name or device.name


def node_devices(cls: HardwareClass) -> dict[str, int]:
    """The claimable (DRA) devices of one node of `cls`, per device class."""
    per_class: Counter[str] = Counter()
    for device in cls.devices:
        if device.claim == "DRA" and device.count > 0:
            per_class[device_class_of(device)] += device.count
    return dict(per_class)


def shape(counts: Iterable[tuple[str, int]]) -> PodShape:
    """A pod shape from (device class, count) pairs, summed per class, in class order."""
    total: Counter[str] = Counter()
    for device_class, count in counts:
        total[device_class] += count
    return tuple(sorted((c, n) for c, n in total.items() if n > 0))


def member_pods(members: Sequence[PlacedMember]) -> Demand:
    """The pods of an engine's members that claim devices, each with its shape."""
    pods: list[PodShape] = []
    for member in members:
        if member.node_cost:
            one = shape((r.device_class_name, r.count) for r in member.requests)
            pods += [one] * member.node_cost
    return tuple(pods)


def size(pod: PodShape) -> tuple[int, PodShape]:
    """Sort key, largest first when negated: a whole node before anything else."""
    return (sum(n for _, n in pod) if pod else 1 << 30, pod)


def dominated(now: Demand, held: Demand) -> bool:
    """True when `now` needs no more than `held`: no more pods, and its pods, largest
    first, each fit inside the matching pod of `held` (a whole node holds anything)."""
    if len(now) > len(held):
        return False
    ordered_now = sorted(now, key=size, reverse=True)
    ordered_held = sorted(held, key=size, reverse=True)
    for small, big in zip(ordered_now, ordered_held, strict=False):
        if big == WHOLE_NODE:
            continue
        if small == WHOLE_NODE:
            return False
        limit = dict(big)
        if any(n > limit.get(c, 0) for c, n in small):
            return False
    return True


class Nodes:
    """The free devices of each node of one pool."""

    def __init__(self, nodes: int, capacity: Mapping[str, int]) -> None:
        self.capacity = dict(capacity)
        self.free = [dict(capacity) for _ in range(max(nodes, 0))]
        self.overflow = 0  # pods charged that fit no node (a pool already overcommitted)

    def _fits(self, node: int, pod: PodShape) -> bool:
        free = self.free[node]
        if pod == WHOLE_NODE:
            return free == self.capacity
        return all(free.get(c, 0) >= n for c, n in pod)

    def _in_use(self, node: int, pod: PodShape) -> int:
        classes = [c for c, _ in pod] if pod else list(self.capacity)
        return sum(self.capacity.get(c, 0) - self.free[node].get(c, 0) for c in classes)

    def _take(self, node: int, pod: PodShape) -> None:
        free = self.free[node]
        for c, n in pod or self.capacity.items():
            free[c] = free.get(c, 0) - n

    def give(self, placed: Sequence[tuple[int, PodShape]]) -> None:
        """Return pods placed by `pack` (node -1: an overflowed pod)."""
        for node, pod in placed:
            if node < 0:
                self.overflow -= 1
                continue
            free = self.free[node]
            for c, n in pod or self.capacity.items():
                free[c] = free.get(c, 0) + n

    def pack(self, pods: Sequence[PodShape]) -> list[tuple[int, PodShape]] | None:
        """Place every pod (largest first, most-allocated node that fits, lowest on ties)
        and say where; None, with nothing placed, when some pod fits no node."""
        placed: list[tuple[int, PodShape]] = []
        for pod in sorted(pods, key=size, reverse=True):
            best = -1
            for node in range(len(self.free)):
                if self._fits(node, pod) and (
                    best < 0 or self._in_use(node, pod) > self._in_use(best, pod)
                ):
                    best = node
            if best < 0:
                self.give(placed)
                return None
            self._take(best, pod)
            placed.append((best, pod))
        return placed

    def force(self, pods: Sequence[PodShape]) -> list[tuple[int, PodShape]]:
        """Place what fits, pod by pod, and count the rest as overflow (charging a replica
        that already exists, whether or not the pool still holds it)."""
        placed: list[tuple[int, PodShape]] = []
        for pod in sorted(pods, key=size, reverse=True):
            one = self.pack([pod])
            if one is None:
                self.overflow += 1
                placed.append((-1, pod))
            else:
                placed += one
        return placed

    def fits(self, pods: Sequence[PodShape]) -> bool:
        """Whether `pods` could be placed now (nothing is placed)."""
        if self.overflow:
            return False
        placed = self.pack(pods)
        if placed is None:
            return False
        self.give(placed)
        return True

    def best_free(self, pod: PodShape) -> tuple[int, int]:
        """(free, total) devices of `pod`'s classes on the node with the most of them free."""
        classes = [c for c, _ in pod] if pod else list(self.capacity)
        total = sum(self.capacity.get(c, 0) for c in classes)
        free = max((sum(f.get(c, 0) for c in classes) for f in self.free), default=0)
        return free, total

    def free_devices(self) -> int:
        return sum(sum(f.values()) for f in self.free)

    def whole_free_nodes(self) -> int:
        return sum(1 for f in self.free if f == self.capacity)
