"""One phase's pods (prefill or decode) and what the router knows of each (state, no I/O).

A `Phase` holds the current ready pods, one `Upstream` (connection pool) per
pod, the router's in-flight count per pod, the load each engine last reported,
and (for prefill) the hash ring over the pods. `update` swaps the pod set in:
pods that stay keep their connections and counts; pods that left have their
idle connections closed (requests in flight to them finish on their own).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pd_router import metrics
from pd_router.affinity import Ring
from pd_router.leastload import EngineLoad
from pd_router.pods import Pod
from pd_router.upstream import Upstream


class Phase:
    def __init__(self, name: str, connect_timeout_s: float) -> None:
        self.name = name
        self.connect_timeout_s = connect_timeout_s
        self.pods: dict[str, Pod] = {}
        self.upstreams: dict[str, Upstream] = {}
        self.in_flight: dict[str, int] = {}
        self.reported: dict[str, EngineLoad] = {}
        self.ring = Ring(())
        self.addresses: tuple[str, ...] = ()
        metrics.PODS.labels(name).set(0)

    def update(self, pods: Iterable[Pod]) -> None:
        fresh = {pod.address: pod for pod in pods}
        for address in self.pods.keys() - fresh.keys():
            self.upstreams.pop(address).close()
            self.reported.pop(address, None)
        for address, pod in fresh.items():
            if address not in self.upstreams:
                self.upstreams[address] = Upstream(pod.host, pod.port, self.connect_timeout_s)
                self.in_flight.setdefault(address, 0)
        self.pods = fresh
        self.addresses = tuple(sorted(fresh))
        self.ring = Ring(self.addresses)
        metrics.PODS.labels(self.name).set(len(fresh))

    @contextmanager
    def busy(self, address: str) -> Iterator[Upstream]:
        """Count a request in flight to `address` for the duration of the block."""
        pod = self.pods.get(address)
        gauge = metrics.child(metrics.IN_FLIGHT, self.name, pod.label if pod else address)
        self.in_flight[address] = self.in_flight.get(address, 0) + 1
        gauge.inc()
        try:
            yield self.upstreams[address]
        finally:
            self.in_flight[address] -= 1
            gauge.dec()
