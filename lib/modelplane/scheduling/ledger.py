"""Running count of nodes charged per (cluster, pool), across every deployment.

The ledger only ever reads the node cost recorded on a replica when it was
placed, so later template edits never double-charge. A replica pinned to a
cluster or pool that no longer exists charges nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelplane.scheduling.model import Cluster, Replica


class Ledger:
    """Nodes in use and nodes available, per (cluster, pool)."""

    def __init__(self, clusters: Iterable[Cluster], replicas: Iterable[Replica]) -> None:
        self._capacity: dict[tuple[str, str], int] = {
            (cluster.name, pool.name): pool.nodes for cluster in clusters for pool in cluster.pools
        }
        self._used: dict[tuple[str, str], int] = {}
        for replica in replicas:
            self.charge_replica(replica)

    def free(self, cluster: str, pool: str) -> int:
        key = (cluster, pool)
        return self._capacity.get(key, 0) - self._used.get(key, 0)

    def capacity(self, cluster: str, pool: str) -> int:
        return self._capacity.get((cluster, pool), 0)

    def charge(self, cluster: str, pool: str, nodes: int) -> None:
        key = (cluster, pool)
        if key in self._capacity and nodes:
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
        return dict(self._used)
