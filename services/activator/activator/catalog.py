"""What the activator knows of each ModelService: its hold policy and its Ready endpoints (pure).

`catalog(services, endpoints)` turns the watched ModelServices and ModelEndpoints
into one `Entry` per service: its `Policy` (from `spec.scaleToZero`, the CRD's
defaults filled in; None without the field) and its `Target`s, the endpoints
it selects whose `spec.url` can be routed, as the front door would route them
(`modelplane.endpoints`: the same selection, URL checks and prefix rewrite).
A ModelEndpoint exists only while its replica is Ready (endpoint-manager
withdraws it otherwise), so a target is a Ready endpoint. `service_of(path)`
names the service a request path `/<namespace>/<name>/...` belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.endpoints import parse_url, select, service_prefix, upstream_path

Obj = Mapping[str, Any]
ServiceKey = tuple[str, str]
"""(namespace, name) of a ModelService."""
DEFAULT_HOLD_S = 600
DEFAULT_MAX_HELD = 256


@dataclass(frozen=True, slots=True)
class Policy:
    """How the service's requests wait at zero (`spec.scaleToZero`)."""

    hold_timeout_s: float = DEFAULT_HOLD_S
    max_held: int = DEFAULT_MAX_HELD


@dataclass(frozen=True, slots=True)
class Target:
    """One Ready endpoint: where to send a request and the path prefix it sees."""

    endpoint: str
    base_url: str
    """`scheme://host:port`, IPv6 hosts bracketed."""
    rewrite_path: str

    def url(self, prefix: str, path: str, query: str) -> str:
        """The endpoint's URL for a request to `path?query` under the service `prefix`."""
        found = upstream_path(path, prefix, self.rewrite_path)
        return f"{self.base_url}{found}?{query}" if query else f"{self.base_url}{found}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ModelService as the activator sees it."""

    prefix: str
    policy: Policy | None
    """None: the service does not hold requests (no `spec.scaleToZero`)."""
    targets: tuple[Target, ...] = ()


def policy(service: Obj) -> Policy | None:
    """The service's hold policy, or None without `spec.scaleToZero`."""
    spec = (service.get("spec") or {}).get("scaleToZero")
    if not isinstance(spec, Mapping):
        return None
    return Policy(
        hold_timeout_s=float(spec.get("holdTimeoutSeconds", DEFAULT_HOLD_S)),
        max_held=int(spec.get("maxHeldRequests", DEFAULT_MAX_HELD)),
    )


def target(endpoint: Obj) -> Target | None:
    """The endpoint as a `Target`, or None when its URL cannot be routed."""
    spec = endpoint.get("spec") or {}
    parsed = parse_url(str(spec.get("url", "")))
    if isinstance(parsed, str):
        return None
    scheme, host, port, address_type = parsed
    shown = f"[{host}]" if address_type == "IPv6" else host
    return Target(
        endpoint=str(endpoint["metadata"]["name"]),
        base_url=f"{scheme}://{shown}:{port}",
        rewrite_path=str(spec.get("rewritePath") or "/"),
    )


def catalog(services: Sequence[Obj], endpoints: Sequence[Obj]) -> dict[ServiceKey, Entry]:
    """Every ModelService not being deleted, by (namespace, name)."""
    found: dict[ServiceKey, Entry] = {}
    for service in services:
        meta = service["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        chosen, _ = select(service, endpoints)
        targets = tuple(t for e in chosen if (t := target(e)) is not None)
        namespace, name = str(meta.get("namespace", "")), str(meta["name"])
        found[namespace, name] = Entry(service_prefix(namespace, name), policy(service), targets)
    return found


def service_of(path: str) -> ServiceKey | None:
    """The (namespace, name) a request path `/<namespace>/<name>/...` is for, or None."""
    parts = path.split("/", 3)
    if len(parts) < 4 or parts[0] or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]
