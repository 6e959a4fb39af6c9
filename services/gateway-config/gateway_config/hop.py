"""The h2c hop: how the front door reaches a backend that does not speak h2c (pure).

Go's reverse proxy inside Traefik cuts some streamed answers when it relays an
HTTP/1.1 request with a Content-Length body to an HTTP/1.1 backend
(golang/go#40747, see `gateway_config.backends`); with an HTTP/2 client side it
never does. So every backend that is not already h2c (plain-HTTP and HTTPS
external providers) is reached in two steps through the same Traefik:

    client -> listener `http` -> h2c -> listener `hop` -> backend (its own scheme)

The first step goes to a selectorless Service whose EndpointSlice is the
gateway's own address on the hop port (`appProtocol: kubernetes.io/h2c`), the
path's service prefix replaced by the backend's hop prefix
`/_hop/<namespace>/<service>/<endpoint>/`; an HTTPRoute on the `hop` listener
matches that prefix and relays to the real backend with today's rewrite, host
name and TLS policy.

`Hop` is what one pass knows of the hop: the listener's port and the gateway's
address (from the Gateway's status; None while it has none, and then the hop
Service lists no endpoint, so that share answers 503 while the ModelService
says the gateway is not ready).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway_config.backends import H2C, AddressType, Backend

Obj = Mapping[str, Any]
LISTENER = "hop"
PREFIX = "/_hop"
DEFAULT_PORT = 8001


@dataclass(frozen=True, slots=True)
class Hop:
    """The hop listener's port and the gateway address its Services point at."""

    port: int = DEFAULT_PORT
    host: str | None = None

    @property
    def address_type(self) -> AddressType:
        """The EndpointSlice address type of `host` (IPv4 while there is none)."""
        if self.host is None:
            return "IPv4"
        try:
            return "IPv4" if ipaddress.ip_address(self.host).version == 4 else "IPv6"
        except ValueError:
            return "FQDN"


def needed(backend: Backend) -> bool:
    """Whether the front door reaches `backend` through the hop (every backend but h2c)."""
    return backend.app_protocol != H2C


def gateway_host(gateway: Obj | None) -> str | None:
    """The Gateway's first non-empty status address, as written there (IPv6 unbracketed)."""
    for entry in ((gateway or {}).get("status") or {}).get("addresses") or []:
        host = str(entry.get("value") or "").strip("[]")
        if host:
            return host
    return None


def prefix(namespace: str, service: str, endpoint: str) -> str:
    """The path prefix the hop listener routes to one backend of one ModelService."""
    return f"{PREFIX}/{namespace}/{service}/{endpoint}/"
