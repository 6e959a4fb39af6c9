"""Which ModelEndpoints a ModelService routes to, and where each one is (pure).

`backend` turns one ModelEndpoint into a `Backend` (scheme, host, port, the
EndpointSlice address type, the path that replaces the service prefix) or into
the reason its `spec.url` cannot be routed. `parse_url` and the selection
(`by_entry`, `select`) are `modelplane.endpoints`' (shared with the activator),
named here too.

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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelplane.endpoints import AddressType, by_entry, matches, parse_url, select
from modelplane.wellknown import MANAGED_BY

__all__ = ["H2C", "REPLICA_PUBLISHER", "AddressType", "Backend", "backend", "by_entry",
           "matches", "parse_url", "select"]  # fmt: skip
Obj = Mapping[str, Any]
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
