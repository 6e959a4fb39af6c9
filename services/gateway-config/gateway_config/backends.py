"""Which ModelEndpoints a ModelService routes to, and where each one is (pure).

`backend` turns one ModelEndpoint into a `Backend` (scheme, host, port, the
EndpointSlice address type, the path that replaces the service prefix) or into
the reason its `spec.url` cannot be routed; `by_entry` gives, per entry of a
ModelService's `spec.endpoints`, the endpoints its `selector.matchLabels`
matches; `select` their union (an endpoint matched by two entries counts once)
sorted by name, plus the indexes of the entries that match nothing.

A replica's endpoint (published by endpoint-manager, plain http) points at an
inference cluster's gateway, which speaks HTTP/2 cleartext: its backend's
`app_protocol` is `kubernetes.io/h2c`; every other endpoint keeps its scheme's
protocol (`http`, or `https` with TLS) and is reached through the h2c hop
(`gateway_config.hop`).

Guarantees: a `Backend` is something an EndpointSlice accepts and Traefik can
dial: an `http` or `https` URL with a host and a port in 1..65535 (80 and 443
by default), no user info, query, fragment or path beyond `/` (the path the
backend sees comes from `spec.rewritePath`), an IP that is not loopback,
link-local, multicast or unspecified, or a fully qualified host name.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelplane.wellknown import MANAGED_BY

Obj = Mapping[str, Any]
AddressType = Literal["IPv4", "IPv6", "FQDN"]
DEFAULT_PORTS = {"http": 80, "https": 443}
REPLICA_PUBLISHER = "modelplane-endpoint-manager"
# HTTP/2 without TLS: how the front door talks to an inference cluster's gateway. A Go
# reverse proxy (Traefik) relaying HTTP/1.1 to HTTP/1.1 cuts 2 to 9 in 100 (more under load)
# streamed answers to requests with a body of known length: after copying the body to
# the backend it reads the client's body once more to check its end; if the backend has
# already answered and the proxy sent the response head to its HTTP/1.1 client, Go's
# server has closed that body, the read fails and the transport closes the backend
# connection mid-stream (golang/go#40747, traefik/traefik#11767). An HTTP/2 client side
# never closes the body early, so over h2c the cluster gateway's own HTTP/1.1 hop to the
# engine is safe too. External http/https endpoints are reached through an h2c hop back
# into the front door (`gateway_config.hop`), so they get that HTTP/2 client side as well.
H2C = "kubernetes.io/h2c"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Backend:
    """One routable ModelEndpoint."""

    name: str
    scheme: Literal["http", "https"]
    host: str
    port: int
    address_type: AddressType
    rewrite_path: str
    app_protocol: str = "http"

    @property
    def tls_hostname(self) -> str | None:
        """The name the gateway verifies the backend's certificate against (and sends as
        SNI): the host of an `https` URL that names one; None for plain http and for an
        IP address (a BackendTLSPolicy validates host names only)."""
        return self.host if self.scheme == "https" and self.address_type == "FQDN" else None


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


def backend(endpoint: Obj) -> Backend | str:
    """The endpoint as a `Backend`, or the message saying why its `spec.url` is not routed."""
    meta, spec = endpoint["metadata"], endpoint.get("spec") or {}
    url = str(spec.get("url", ""))
    parsed = parse_url(url)
    if isinstance(parsed, str):
        what = f"ModelEndpoint {meta.get('namespace', '')}/{meta['name']}"
        return f"{what} spec.url {url!r}: {parsed}"
    scheme, host, port, address_type = parsed
    labels = meta.get("labels") or {}
    app_protocol = scheme
    if scheme == "http" and labels.get(MANAGED_BY) == REPLICA_PUBLISHER:
        app_protocol = H2C
    return Backend(
        name=meta["name"],
        scheme="https" if scheme == "https" else "http",
        host=host,
        port=port,
        address_type=address_type,
        rewrite_path=str(spec.get("rewritePath") or "/"),
        app_protocol=app_protocol,
    )


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
