"""Which ModelEndpoints a ModelService selects, and where each one is (pure).

One implementation for every reader of ModelServices: gateway-config's routes
and the activator's forwarding both come from here, so a request the activator
forwards reaches the same URL the front door would have used.

- `parse_url` checks a ModelEndpoint's `spec.url` and splits it into scheme,
  host, port (80 and 443 by default) and the EndpointSlice address type, or
  says why it cannot be a backend: an `http` or `https` URL with a host and a
  port in 1..65535, no user info, query, fragment or path beyond `/` (the path
  the backend sees comes from `spec.rewritePath`), an IP that is not loopback,
  link-local, multicast or unspecified, or a fully qualified host name.
- `by_entry` gives, per entry of a ModelService's `spec.endpoints`, the
  endpoints (of its namespace, not being deleted) its `selector.matchLabels`
  matches; `select` their union (an endpoint matched by two entries counts
  once) sorted by name, plus the indexes of the entries that match nothing.
- `upstream_path` is the path an endpoint sees for a request the front door
  got: the service's prefix `/<namespace>/<name>/` replaced by the endpoint's
  `spec.rewritePath` (Gateway API `ReplacePrefixMatch`).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Obj = Mapping[str, Any]
AddressType = Literal["IPv4", "IPv6", "FQDN"]
DEFAULT_PORTS = {"http": 80, "https": 443}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _address_type(host: str) -> tuple[AddressType | None, str]:
    """The EndpointSlice address type of `host`, or None and why it cannot be one."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        if len(host) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            return None, f"host {host!r} is neither an IP address nor a valid DNS name"
        if len(labels) < 2:
            return None, (
                f"host {host!r} is not fully qualified (an EndpointSlice needs a name "
                "with at least two dot-separated labels)"
            )
        return "FQDN", ""
    for problem, found in (
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("the unspecified", ip.is_unspecified),
    ):
        if found:
            return None, f"host {host} is {problem} address, which an EndpointSlice cannot hold"
    return ("IPv4" if ip.version == 4 else "IPv6"), ""


def parse_url(url: str) -> tuple[str, str, int, AddressType] | str:
    """(scheme, host, port, address type) of a backend URL, or why it is not one."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        return f"not a valid URL ({error})"
    scheme = parts.scheme.lower()
    if not scheme:
        return "it has no scheme (http:// or https://)"
    if scheme not in DEFAULT_PORTS:
        return f"scheme {parts.scheme!r} is not http or https"
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return "it has no host"
    if parts.username is not None or parts.password is not None:
        return "user info in the URL is not supported"
    if parts.query or parts.fragment:
        return "a query or fragment is not supported"
    if parts.path not in ("", "/"):
        return (
            f"a path ({parts.path}) is not supported: the gateway forwards to "
            "scheme://host:port and spec.rewritePath sets the path the backend sees"
        )
    if port == 0:
        return "port 0 is not a valid port"
    address_type, problem = _address_type(host)
    if address_type is None:
        return problem
    return scheme, host, port or DEFAULT_PORTS[scheme], address_type


def matches(labels: Mapping[str, str], match_labels: Mapping[str, str]) -> bool:
    """Whether every label the selector names has the selector's value."""
    return all(labels.get(k) == v for k, v in match_labels.items())


def by_entry(service: Obj, endpoints: Sequence[Obj]) -> list[list[Obj]]:
    """Per entry of `spec.endpoints`, the endpoints (of the service's namespace, not being
    deleted) its selector matches, in the order given."""
    namespace = service["metadata"].get("namespace", "")
    candidates = [
        e
        for e in endpoints
        if e["metadata"].get("namespace", "") == namespace
        and not e["metadata"].get("deletionTimestamp")
    ]
    entries = (service.get("spec") or {}).get("endpoints") or []
    return [
        [
            e
            for e in candidates
            if matches(
                e["metadata"].get("labels") or {},
                (entry.get("selector") or {}).get("matchLabels") or {},
            )
        ]
        for entry in entries
    ]


def select(service: Obj, endpoints: Sequence[Obj]) -> tuple[list[Obj], list[int]]:
    """The endpoints any entry of `spec.endpoints` matches (`by_entry`), deduplicated and
    sorted by name; and the indexes of the entries that match none."""
    chosen: dict[str, Obj] = {}
    empty: list[int] = []
    for index, found in enumerate(by_entry(service, endpoints)):
        if not found:
            empty.append(index)
        for e in found:
            chosen.setdefault(e["metadata"]["name"], e)
    return [chosen[name] for name in sorted(chosen)], empty


def service_prefix(namespace: str, name: str) -> str:
    """The path prefix of ModelService `namespace/name` at the front door."""
    return f"/{namespace}/{name}/"


def upstream_path(path: str, prefix: str, rewrite_path: str) -> str:
    """`path` (starting with `prefix`) as the endpoint sees it: `prefix` replaced by
    `rewrite_path`, with exactly one `/` where they meet (as `ReplacePrefixMatch` does)."""
    rest = path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")
    base = rewrite_path or "/"
    if not rest:
        return base
    return base.rstrip("/") + "/" + rest
