"""Running count of nodes charged per (cluster, pool), across every deployment.

It starts from the node cost recorded on each existing replica. When a
deployment is placed, each replica it retains is released and charged again at
what its current shape needs (`core`), so an edited template is charged once,
at its new cost, never twice and never at a stale one. A replica pinned to a
cluster or pool that no longer exists charges nothing: only pools that exist
are ever asked for their free nodes.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelplane.scheduling.model import Pool, Replica


class Ledger:
    """Nodes charged per (cluster, pool); free nodes are a pool's capacity minus its charge."""

    def __init__(self, replicas: Iterable[Replica]) -> None:
        self._used: dict[tuple[str, str], int] = {}
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
        for pin in replica.engines:
            self.charge(replica.cluster, pin.pool, pin.node_cost)

    def release_replica(self, replica: Replica) -> None:
        for pin in replica.engines:
            self.release(replica.cluster, pin.pool, pin.node_cost)

    def used(self) -> dict[tuple[str, str], int]:
        """A copy of the nodes charged per (cluster, pool)."""
        return {key: nodes for key, nodes in self._used.items() if nodes}
