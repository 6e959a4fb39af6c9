"""The engine pods behind each phase: from EndpointSlices (pure) or a fixed list.

`ready_pods(slices, port_name)` reads the EndpointSlices of one Service: every
endpoint whose `conditions.ready` is not false (Kubernetes: unset means ready)
and that is not terminating, at its first address, on the slice's port named
`port_name` (or its first port when none is named so). A pod in several
slices counts once. `parse_static("10.0.0.1:8000,...")` is the fixed list the
command line takes instead (engines outside a cluster, benchmarks).

Guarantees: results are sorted by address; a slice without a usable port
contributes nothing; `parse_static` raises `ValueError` naming the entry it
cannot read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True, order=True)
class Pod:
    host: str
    port: int
    name: str = ""

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """The pod's name when known, else its address (metrics and logs)."""
        return self.name or self.address


def slices_path(namespace: str, service: str) -> str:
    """The API collection of one Service's EndpointSlices."""
    return (
        f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        f"?labelSelector={SERVICE_LABEL}={service}"
    )


def _port(slice_: Mapping[str, Any], port_name: str) -> int | None:
    ports = [p for p in slice_.get("ports") or [] if isinstance(p, Mapping) and p.get("port")]
    named = [p for p in ports if p.get("name") == port_name]
    chosen = named[0] if named else ports[0] if ports else None
    return int(chosen["port"]) if chosen is not None else None


def ready_pods(slices: Iterable[Mapping[str, Any]], port_name: str) -> list[Pod]:
    found: dict[str, Pod] = {}
    for slice_ in slices:
        port = _port(slice_, port_name)
        if port is None:
            continue
        for endpoint in slice_.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            addresses = endpoint.get("addresses") or []
            if conditions.get("ready") is False or conditions.get("terminating") or not addresses:
                continue
            name = str((endpoint.get("targetRef") or {}).get("name", ""))
            pod = Pod(str(addresses[0]), port, name)
            found.setdefault(pod.address, pod)
    return sorted(found.values())


def parse_address(entry: str) -> tuple[str, int]:
    """`host:port` (`[v6]:port` too) -> (host, port); ValueError naming the entry."""
    host, sep, port = entry.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"address {entry.strip()!r}: expected host:port")
    return host, int(port)


def parse_static(text: str) -> list[Pod]:
    pods = [Pod(*parse_address(e)) for e in text.split(",") if e.strip()]
    if any(pod.port == 0 for pod in pods):
        raise ValueError("pod port 0: expected a port number")
    return sorted(set(pods))
