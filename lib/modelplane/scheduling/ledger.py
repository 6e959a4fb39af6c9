"""Running count of the capacity charged per (cluster, pool), across every deployment.

Each pool is counted by its cluster's accounting mode:
- `Node` (the whole-node rule): every pod that claims a device charges a whole node;
  a pool's free nodes are its capacity minus its charge (negative when overcommitted);
- `Device` (the cluster runs the scheduler extension): the devices of each node,
  with each pod's claims packed onto the nodes as the extension packs them
  (`modelplane.scheduling.packing`); a pod that fits no node does not fit.

What is charged is a `Demand` per pool: the shape of each claiming pod. It starts
from what each existing replica records, charged replica by replica in the order
the replicas are given (`offline.plan`: oldest first). The cluster's own packing
follows the order its pods bound in, which the fleet does not see: where they
differ, a pod the fleet promised room may stay Pending; the extension never binds
it wrongly. Before
any deployment is placed, every replica that will be dropped is released and
every retained one that shrank is lowered to its new demand (`Session.settle`);
when its deployment is placed, a retained replica is charged what its current
shape needs (`core`), so an edited template is charged once, at its new cost,
never twice and never at a stale one, and a replica's growth sees the capacity
others give back. A replica pinned to a cluster or pool that no longer exists
charges nothing: only pools that exist are ever asked.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from modelplane.scheduling.model import Accounting, Fleet, PodShape, Replica
from modelplane.scheduling.packing import (
    WHOLE_NODE,
    Demand,
    Nodes,
    dominated,
    node_devices,
    size,
)

Key = tuple[str, str]


def pin_demand(node_cost: int, pods: Sequence[PodShape]) -> Demand:
    """What a recorded engine charges: its pods' shapes, or whole nodes when unknown."""
    return tuple(pods) if len(pods) == node_cost else (WHOLE_NODE,) * node_cost


def _describe(pod: PodShape) -> str:
    return " + ".join(f"{n} {c}" for c, n in pod) if pod else "a whole node"


class NodeBook:
    """The whole-node rule on one pool."""

    mode: Accounting = "Node"

    def __init__(self, name: str, nodes: int) -> None:
        self.name = name
        self.nodes = nodes
        self.used = 0

    def free(self) -> int:
        return self.nodes - self.used

    def fits(self, demand: Demand) -> bool:
        return self.used + len(demand) <= self.nodes

    def take(self, demand: Demand) -> object:
        self.used += len(demand)
        return len(demand)

    def give(self, token: object) -> None:
        assert isinstance(token, int)
        self.used -= token

    def grew(self, held: Demand, now: Demand) -> bool:
        return len(now) > len(held)

    def lower(self, held: Demand, now: Demand) -> Demand:
        return now[: len(held)]

    def shortage(self, pending: Demand, demand: Demand) -> str:
        free = self.free() - len(pending)
        return f"pool {self.name} has {max(free, 0)} of {len(demand)} needed nodes free"

    def taken(self, pending: Demand, demand: Demand) -> str:
        return f"({len(demand)} of {self.free() - len(pending)} free nodes)"

    def growth(self, before: int, now: Demand, held: Demand) -> str:
        return (
            f"its engines now need {len(now)} nodes there ({before} when placed) and the pool "
            f"has {max(self.free() - len(held), 0)} more free"
        )


class DeviceBook:
    """Devices per node on one pool, packed as the cluster's extension packs them."""

    mode: Accounting = "Device"

    def __init__(self, name: str, nodes: int, capacity: Mapping[str, int]) -> None:
        self.name = name
        self._size = (nodes, capacity)
        self._nodes: Nodes | None = None

    @property
    def nodes(self) -> Nodes:
        """The pool's nodes, built on first use (most pools of a large fleet are never asked)."""
        if self._nodes is None:
            self._nodes = Nodes(*self._size)
        return self._nodes

    def fits(self, demand: Demand) -> bool:
        return self.nodes.fits(demand)

    def take(self, demand: Demand) -> object:
        return self.nodes.force(demand)

    def give(self, token: object) -> None:
        assert isinstance(token, list)
        self.nodes.give(token)

    def grew(self, held: Demand, now: Demand) -> bool:
        return not dominated(now, held)

    def lower(self, held: Demand, now: Demand) -> Demand:
        return now if dominated(now, held) else held

    def shortage(self, pending: Demand, demand: Demand) -> str:
        """Which pod of `demand` fits no node (with `pending` placed first), and how many
        devices the best node had free."""
        placed = self.nodes.pack(pending) or []
        why = f"pool {self.name} (device accounting) has no room"
        for pod in sorted(demand, key=size, reverse=True):
            one = self.nodes.pack([pod])
            if one is None:
                free, total = self.nodes.best_free(pod)
                why = (
                    f"pool {self.name} (device accounting): a pod claiming {_describe(pod)} "
                    f"fits no node; the best node has {free} of {total} devices free"
                )
                break
            placed += one
        if self.nodes.overflow:
            why += f" ({self.nodes.overflow} pods already placed there fit no node)"
        self.nodes.give(placed)
        return why

    def taken(self, pending: Demand, demand: Demand) -> str:
        wanted = sum(sum(n for _, n in pod) for pod in demand if pod)
        return (
            f"(device accounting: {len(demand)} pods, {wanted} devices, packed per node; "
            f"{self.nodes.empty} of {len(self.nodes.free)} nodes wholly free)"
        )

    def growth(self, before: int, now: Demand, held: Demand) -> str:
        return (
            f"its engines now need {len(now)} pods there ({before} when placed) and they "
            "no longer pack onto the pool's nodes (device accounting)"
        )


Book = NodeBook | DeviceBook


def books(fleet: Fleet) -> dict[Key, Book]:
    """A book per pool of every cluster, in the cluster's accounting mode."""
    out: dict[Key, Book] = {}
    per_class = {name: node_devices(cls) for name, cls in fleet.classes.items()}
    for cluster in fleet.clusters:
        for pool in cluster.pools:
            capacity = per_class.get(pool.class_name)
            if cluster.accounting == "Device" and capacity is not None:
                out[(cluster.name, pool.name)] = DeviceBook(pool.name, pool.nodes, capacity)
            else:
                out[(cluster.name, pool.name)] = NodeBook(pool.name, pool.nodes)
    return out


class Ledger:
    """Capacity charged per (cluster, pool).

    Each existing replica's charge is remembered per pool, so it can be lowered, raised or
    released exactly once whatever its recorded pins say.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.books = books(fleet)
        self._held: dict[int, tuple[str, dict[str, Demand], list[tuple[Key, object]]]] = {}
        # Existing replicas are charged one by one in the order given, each as a placement
        # is: feeding a session's placements back, in order, packs them exactly as it did.
        for replica in fleet.replicas:
            demands: dict[str, Demand] = {}
            for pin in replica.engines:
                demands[pin.pool] = demands.get(pin.pool, ()) + pin_demand(pin.node_cost, pin.pods)
            self.hold(replica, demands)

    def book(self, cluster: str, pool: str) -> Book | None:
        return self.books.get((cluster, pool))

    def charge(self, cluster: str, pool: str, demand: Demand) -> None:
        """Charge a new placement (never released in this session)."""
        book = self.books.get((cluster, pool))
        if book is not None and demand:
            book.take(demand)

    def held(self, replica: Replica) -> dict[str, Demand]:
        """What `replica` is charged now, per pool of its cluster."""
        return dict(self._held.get(id(replica), ("", {}, []))[1])

    def hold(self, replica: Replica, demands: Mapping[str, Demand]) -> None:
        """Charge `replica` exactly `demands` (per pool of its cluster) instead of what it
        held; a pool whose demand is unchanged keeps its charge as it is (its pods stay on
        the nodes they were packed onto)."""
        _, before, tokens = self._held.pop(id(replica), ("", {}, []))
        kept: list[tuple[Key, object]] = []
        for key, token in tokens:
            if demands.get(key[1], ()) == before.get(key[1]):
                kept.append((key, token))
            else:
                self.books[key].give(token)
        unchanged = {key[1] for key, _ in kept}
        for pool, demand in sorted(demands.items()):
            key = (replica.cluster, pool)
            book = self.books.get(key)
            if pool not in unchanged and book is not None and demand:
                kept.append((key, book.take(demand)))
        self._held[id(replica)] = (replica.cluster, dict(demands), kept)

    def release_pools(self, replica: Replica, pools: Collection[str]) -> None:
        """Release what `replica` holds on `pools`, keeping the rest."""
        held = self.held(replica)
        self.hold(replica, {pool: d for pool, d in held.items() if pool not in pools})

    def release_replica(self, replica: Replica) -> None:
        """Release whatever `replica` holds; a second release does nothing."""
        _, _, tokens = self._held.pop(id(replica), ("", {}, []))
        for key, token in tokens:
            self.books[key].give(token)
