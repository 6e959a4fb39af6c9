"""Failover and overflow between a ModelService's priorities (pure).

`spec.endpoints[i].priority` (0 to 9, default 0) orders a service's entries.
The entries of one priority form a tier; within a tier, entries share by
weight (`gateway_config.weights`).

With two priorities or more in the spec (and retries on) the front door chains
the tiers with Traefik `failover` TraefikServices (`traefik.io/v1alpha1`,
Traefik's CRD provider); the chain follows the spec, not the endpoints, so
endpoints coming and going change only the tiers' backendRefs, never the
chain:

    route `<ns>/<svc>` (listener http) -> TraefikService `<svc>`:
      failover(service: tier 0, fallback: next link ... -> last tier)

Each tier is reached through the h2c hop (the gateway's own `hop` listener, a
selectorless Service of the gateway's address, as `gateway_config.hop`) with the
Middleware `addPrefix: /_tier/<priority>` in front, and an HTTPRoute on the hop
listener matching `/_tier/<priority>/<ns>/<svc>/` spreads the request over the
tier's endpoints by weight with their own rewrites, host names and TLS policies,
behind the tier's retry Middleware (`TIER_RETRY_STATUS`). Its client side is
already h2c, so external providers are reached directly from it (no second hop).

A link sends a request to its fallback when the tier's final answer has a
status in `OVERFLOW_STATUS`, before anything of it reached the client: 429 (a
provider or engine rejecting work, or an endpoint at its `maxInFlight`,
`gateway_config.limits`: overflow), 500 and 502-504 (the tier's retries on its
other endpoints did not help: every endpoint of it failed, or an engine at
capacity answered 503), and 503 at once from a tier with no routed endpoint
(none matched, all withdrawn, all with a bad URL: its route keeps the empty
stand-in backend, `gateway_config.render`), which is failover on readiness.
503 and 429 are not retried inside a tier, so a saturated tier is asked once,
not ten times, before its excess goes on.

Without retries (no Traefik CRD provider) there is no chain: the lowest tier
with a routed endpoint takes all the traffic, by weight.
A stream that has started is never moved. Traefik buffers the request body to
replay it (`maxRequestBodyBytes: -1`, read as it comes: a fixed bound would
allocate that bound for every request, and refuse larger bodies with 413).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.wellknown import Json

from gateway_config.retry import UNBOUNDED_BODY
from gateway_config.weights import endpoint_weights, entry_weight

Obj = Mapping[str, Any]

KIND = "TraefikService"
PREFIX = "/_tier"
DEFAULT_PRIORITY = 0
OVERFLOW_STATUS = ("429", "500", "502-504")
TIER_RETRY_STATUS = ("500", "502", "504")


@dataclass(frozen=True, slots=True)
class Tier:
    """The entries of one priority that have a routed endpoint: their endpoints' weights."""

    priority: int
    weights: Mapping[str, int]

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(self.weights)


def entry_priority(entry: Mapping[str, Any]) -> int:
    """An entry's `priority` (the CRD schema bounds it; absent means 0)."""
    return int(entry.get("priority", DEFAULT_PRIORITY))


def tiers(entries: Sequence[tuple[Mapping[str, Any], Sequence[str]]]) -> list[Tier]:
    """The tiers, lowest priority first, from (entry, the entry's routed endpoint names)
    per entry: one per priority in the spec, with no endpoint if none is routed."""
    by_priority: dict[int, list[tuple[int, Sequence[str]]]] = {}
    for entry, names in entries:
        by_priority.setdefault(entry_priority(entry), []).append((entry_weight(entry), names))
    return [
        Tier(priority, endpoint_weights(members))
        for priority, members in sorted(by_priority.items())
    ]


def serving(found: Sequence[Tier]) -> Tier:
    """The lowest tier with a routed endpoint (without a chain, the only one routed)."""
    return next((t for t in found if t.weights), Tier(DEFAULT_PRIORITY, {}))


def prefix(priority: int) -> str:
    """The path prefix the front door puts before a request it sends to tier `priority`."""
    return f"{PREFIX}/{priority}"


def add_prefix_spec(priority: int) -> Json:
    """The Middleware that sends a request to tier `priority`'s route on the hop listener."""
    return {"addPrefix": {"prefix": prefix(priority)}}


def link_spec(service: Json, fallback: Json) -> Json:
    """A failover link: `service` first, `fallback` for the answers in `OVERFLOW_STATUS`
    (both Traefik LoadBalancerSpecs)."""
    return {
        "failover": {
            "service": service,
            "fallback": fallback,
            "errors": {"status": list(OVERFLOW_STATUS), "maxRequestBodyBytes": UNBOUNDED_BODY},
        }
    }
