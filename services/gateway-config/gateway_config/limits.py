"""How many requests the front door lets be in flight at one endpoint (pure).

Engines queue what they cannot run at once (vLLM, and the simulator with
`--max-concurrency`); they do not refuse it, so a saturated fleet gets slower
instead of sending its excess on. `spec.endpoints[i].maxInFlight` (optional)
bounds the requests of the service in flight at each endpoint entry i matches
(the least bound when several entries match it); one more is answered 429 at
once by the front door, before it reaches the endpoint, which a service with a
fallback entry (`gateway_config.failover`) sends to the next priority
(overflow), and any other client sees as back-pressure. Set it to what the
endpoint runs at once (the engines' concurrency times their replicas behind it).

Each bounded endpoint's backendRef carries a Traefik `inFlightReq` Middleware
(one per service and endpoint, so one counter each). Traefik counts in-flight
requests per source; the route's rule sets the header `HEADER` to the service's
`<namespace>/<name>` for every request (replacing a client's own), and the
Middleware counts by that header, so all clients share the endpoint's bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelplane.wellknown import Json

HEADER = "X-Modelplane-Service"
FIELD = "maxInFlight"


def endpoint_limits(entries: Sequence[tuple[Mapping[str, Any], Sequence[str]]]) -> dict[str, int]:
    """The bound of each endpoint, from (entry, the entry's routed endpoint names) per entry:
    the least `maxInFlight` of the entries matching it; unbounded endpoints are absent."""
    found: dict[str, int] = {}
    for entry, names in entries:
        if FIELD not in entry:
            continue
        bound = int(entry[FIELD])
        for name in names:
            found[name] = min(bound, found.get(name, bound))
    return found


def spec(amount: int) -> Json:
    """The `inFlightReq` Middleware of one endpoint: `amount` at once, counted per service."""
    return {"inFlightReq": {"amount": amount, "sourceCriterion": {"requestHeaderName": HEADER}}}


def header_filter(namespace: str, service: str) -> Json:
    """The route rule filter naming the service in `HEADER` for the endpoints' counters."""
    value = f"{namespace}/{service}"
    return {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {"set": [{"name": HEADER, "value": value}]},
    }
