"""Running count of nodes charged per (cluster, pool), across every deployment.

It starts from the node cost recorded on each existing replica. Before any
deployment is placed, every replica that will be dropped is released and every
retained one that shrank is lowered to its new cost (`Session.settle`); when its
deployment is placed, a retained replica is charged what its current shape needs
(`core`), so an edited template is charged once, at its new cost, never twice and
never at a stale one, and a replica's growth sees the nodes others give back. A replica pinned to a
cluster or pool that no longer exists charges nothing: only pools that exist
are ever asked for their free nodes.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelplane.scheduling.model import Pool, Replica


class Ledger:
    """Nodes charged per (cluster, pool); free nodes are a pool's capacity minus its charge.

    Each existing replica's charge is remembered per pool, so it can be lowered, raised or
    released exactly once whatever its recorded pins say.
    """

    def __init__(self, replicas: Iterable[Replica]) -> None:
        self._used: dict[tuple[str, str], int] = {}
        self._held: dict[int, tuple[str, dict[str, int]]] = {}
        for replica in replicas:
            self.charge_replica(replica)

    def free(self, cluster: str, pool: Pool) -> int:
        """Nodes of `pool` on `cluster` not charged to any replica (negative if overcommitted)."""
        return pool.nodes - self._used.get((cluster, pool.name), 0)

    def charge(self, cluster: str, pool: str, nodes: int) -> None:
        if nodes:
            key = (cluster, pool)
            self._used[key] = self._used.get(key, 0) + nodes

    def release(self, cluster: str, pool: str, nodes: int) -> None:
        self.charge(cluster, pool, -nodes)

    def charge_replica(self, replica: Replica) -> None:
        """Charge an existing replica what its pins record."""
        costs: dict[str, int] = {}
        for pin in replica.engines:
            costs[pin.pool] = costs.get(pin.pool, 0) + pin.node_cost
        self.hold(replica, costs)

    def held(self, replica: Replica) -> dict[str, int]:
        """What `replica` is charged now, per pool of its cluster."""
        return dict(self._held.get(id(replica), ("", {}))[1])

    def hold(self, replica: Replica, costs: dict[str, int]) -> None:
        """Charge `replica` exactly `costs` (per pool of its cluster) instead of what it held."""
        self.release_replica(replica)
        self._held[id(replica)] = (replica.cluster, dict(costs))
        for pool, nodes in costs.items():
            self.charge(replica.cluster, pool, nodes)

    def release_replica(self, replica: Replica) -> None:
        """Release whatever `replica` holds; a second release does nothing."""
        cluster, costs = self._held.pop(id(replica), ("", {}))
        for pool, nodes in costs.items():
            self.release(cluster, pool, nodes)

    def used(self) -> dict[tuple[str, str], int]:
        """A copy of the nodes charged per (cluster, pool)."""
        return {key: nodes for key, nodes in self._used.items() if nodes}
