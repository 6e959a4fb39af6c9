"""The front door's retry: a request that fails on one endpoint is sent to another (pure).

Each ModelService's route carries one Traefik `Middleware` (`traefik.io/v1alpha1`,
named like the route, in the service's namespace, owned by it), reached from the
route's rule through an `ExtensionRef` filter; Traefik's Gateway provider ignores
the HTTPRoute `retry` field, and its ExtensionRef filters resolve through
Traefik's Kubernetes CRD provider, which must be on.

Semantics (Traefik 3.7's `retry` middleware, read from its source): the
middleware wraps the route's weighted round robin over its backendRefs, so each
new attempt is the balancer's next pick, normally another endpoint.

- A connection error before any byte of the request reached the endpoint (the
  endpoint's cluster is gone: connection refused, reset, no route) is retried
  for every method.
- An answer whose status is in `STATUS` (502, 503, 504: an endpoint's gateway
  whose engine or upstream is gone, an engine at capacity; 500: what Traefik
  itself answers when its h2c connection to a cluster's gateway is lost
  mid-request, an HTTP/2 error being neither EOF nor a network error to its
  status mapping; without it 2 of 300 requests failed at 50 per second when a
  cluster was lost) is swallowed and
  retried, POST included (`retryNonIdempotentMethod`), as long as nothing of
  the answer has reached the client. For that the request body is read whole
  before the first attempt (`maxRequestBodyBytes: -1`, `UNBOUNDED_BODY`: read as
  it comes, growing from 512 bytes, so a chat of a few KiB costs a few KiB; the
  failover chain reads bodies the same way, `gateway_config.failover`). A bound
  (`--retry-max-body-bytes N`) caps what one request may hold in memory, but
  Traefik allocates all N bytes for every request, bodyless ones included: 1 MiB
  (this module's bound until 2026-12) added 0.4 ms to the time to first token at
  one stream at a time, 64 KiB nothing measurable (`tools/bench/front_door_ab.py`),
  and a body over the bound is still retried on connection errors only.
- Once an answer's head reached the client (a 200 stream has started) nothing
  is retried: a stream cut mid-way stays cut.
- At most `ATTEMPTS` tries in all, back to back (no backoff: the next pick is
  another endpoint, not the same one later); the last answer goes to the client.
  Concurrent requests' picks interleave, so with one of two endpoints dead a
  retry lands on it again about half the time: measured with a dead endpoint
  left in rotation, 4 attempts failed 6 of 400 requests at 50 per second, 10
  failed none (`e2e/test_front_door.py`).

Traefik 3.7 has no passive health check for Gateway API backends (it has one
only for the servers of its own CRD services), so a dead endpoint stays in the
rotation until endpoint-manager withdraws its ModelEndpoint; the retry makes a
pick of it cost one refused connection instead of a failed request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.wellknown import Json

Obj = Mapping[str, Any]

API_VERSION = "traefik.io/v1alpha1"
GROUP = "traefik.io"
KIND = "Middleware"
ATTEMPTS = 10
STATUS = ("500", "502-504")
UNBOUNDED_BODY = -1
"""Traefik's `maxRequestBodyBytes` for "read the whole body as it comes" (the default here)."""


def spec(status: tuple[str, ...] = STATUS, max_body_bytes: int = UNBOUNDED_BODY) -> Json:
    """The `retry` middleware's settings (see the module docstring), retrying `status`
    (a tier of a service with fallbacks retries fewer, `gateway_config.failover`) for
    bodies up to `max_body_bytes` (`UNBOUNDED_BODY`: any)."""
    return {
        "retry": {
            "attempts": ATTEMPTS,
            "status": list(status),
            "retryNonIdempotentMethod": True,
            "maxRequestBodyBytes": max_body_bytes,
        }
    }


def filter_ref(name: str) -> Json:
    """The HTTPRoute rule filter that applies Middleware `name` (of the route's namespace)."""
    return {"type": "ExtensionRef", "extensionRef": {"group": GROUP, "kind": KIND, "name": name}}
