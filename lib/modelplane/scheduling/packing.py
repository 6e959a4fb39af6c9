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
    """The free devices of each node of one pool, as counts per device class."""

    def __init__(self, nodes: int, capacity: Mapping[str, int]) -> None:
        self.capacity = dict(capacity)
        self.classes = tuple(sorted(capacity))
        self.cap = [capacity[c] for c in self.classes]
        self.free = [list(self.cap) for _ in range(max(nodes, 0))]
        self.empty = len(self.free)  # nodes with every device free
        self.total = [n * len(self.free) for n in self.cap]  # free devices per class
        self.overflow = 0  # pods charged that fit no node (a pool already overcommitted)
        self._vectors: dict[PodShape, list[tuple[int, int]] | None] = {}

    def _vector(self, pod: PodShape) -> list[tuple[int, int]] | None:
        """(class index, count) per device class the pod claims; None when no node of the
        pool could hold it even empty."""
        if pod in self._vectors:
            return self._vectors[pod]
        index = {c: i for i, c in enumerate(self.classes)}
        vector: list[tuple[int, int]] | None
        if pod == WHOLE_NODE:
            vector = list(enumerate(self.cap))
        elif all(c in index and n <= self.cap[index[c]] for c, n in pod):
            vector = [(index[c], n) for c, n in pod]
        else:
            vector = None
        self._vectors[pod] = vector
        return vector

    def _is_empty(self, node: int) -> bool:
        return self.free[node] == self.cap

    def _place(self, pod: PodShape) -> int:
        """The node for `pod` (most of its classes in use among those that fit, lowest on
        ties), taken; -1 when none fits."""
        vector = self._vector(pod)
        if vector is None:
            return -1
        whole = pod == WHOLE_NODE
        best, best_used = -1, -1
        for node, free in enumerate(self.free):
            if whole:
                if free != self.cap:
                    continue
                used = 0
            else:
                if any(free[i] < n for i, n in vector):
                    continue
                used = sum(self.cap[i] - free[i] for i, _ in vector)
            if used > best_used:
                best, best_used = node, used
        if best >= 0:
            self._change(best, vector, -1)
        return best

    def _change(self, node: int, vector: list[tuple[int, int]], sign: int) -> None:
        was_empty = self._is_empty(node)
        free = self.free[node]
        for i, n in vector:
            free[i] += sign * n
            self.total[i] += sign * n
        self.empty += int(self._is_empty(node)) - int(was_empty)

    def give(self, placed: Sequence[tuple[int, PodShape]]) -> None:
        """Return pods placed by `pack` or `force` (node -1: an overflowed pod)."""
        for node, pod in placed:
            if node < 0:
                self.overflow -= 1
                continue
            vector = self._vector(pod)
            assert vector is not None
            self._change(node, vector, +1)

    def pack(self, pods: Sequence[PodShape]) -> list[tuple[int, PodShape]] | None:
        """Place every pod (largest first, most-allocated node that fits, lowest on ties)
        and say where; None, with nothing placed, when some pod fits no node."""
        placed: list[tuple[int, PodShape]] = []
        for pod in sorted(pods, key=size, reverse=True):
            node = self._place(pod)
            if node < 0:
                self.give(placed)
                return None
            placed.append((node, pod))
        return placed

    def force(self, pods: Sequence[PodShape]) -> list[tuple[int, PodShape]]:
        """Place what fits, pod by pod, and count the rest as overflow (charging a replica
        that already exists, whether or not the pool still holds it)."""
        placed: list[tuple[int, PodShape]] = []
        for pod in sorted(pods, key=size, reverse=True):
            node = self._place(pod)
            if node < 0:
                self.overflow += 1
            placed.append((node, pod))
        return placed

    def fits(self, pods: Sequence[PodShape]) -> bool:
        """Whether `pods` could be placed now (nothing is placed). Pods that each fit an
        empty node fit at once when there are enough empty nodes; pods that claim more of a
        class than the pool has free do not fit."""
        if self.overflow:
            return False
        vectors = [self._vector(p) for p in pods]
        if any(v is None for v in vectors):
            return False
        if len(pods) <= self.empty:
            return True
        wanted = [0] * len(self.cap)
        for vector in vectors:
            for i, n in vector or ():
                wanted[i] += n
        if any(w > t for w, t in zip(wanted, self.total, strict=True)):
            return False
        placed = self.pack(pods)
        if placed is None:
            return False
        self.give(placed)
        return True

    def best_free(self, pod: PodShape) -> tuple[int, int]:
        """(free, total) devices of `pod`'s classes on the node with the most of them free."""
        vector = self._vector(pod) or []
        total = sum(self.cap[i] for i, _ in vector)
        free = max((sum(f[i] for i, _ in vector) for f in self.free), default=0)
        return free, total
