"""Make-before-break for the objects of ModelServices (pure): no route names what Traefik lacks.

Traefik loads gateway-config's objects through two providers, each on its own
watches and each applying its changes at most every `providersThrottleDuration`
(2 s by default): the Gateway API provider (HTTPRoutes, Services,
EndpointSlices, BackendTLSPolicies, ConfigMaps) and the Kubernetes CRD provider
(Middlewares, TraefikServices). A route naming a Middleware or TraefikService
that Traefik has not loaded yet, or has already dropped, is not built and its
requests get 404; one naming a Service without its EndpointSlice gets 500. So
`plan` orders a ModelService's changes in time, not only within one pass:

- made before: an observed HTTPRoute or TraefikService is changed to its wanted
  version only once everything that version needs (`needs`, followed through:
  the Middlewares and Services it names, a Service's EndpointSlice, TLS policy,
  CA bundle and, for a hop or tier Service, the HTTPRoute behind it, `RELAY_ROUTE`)
  has existed for more than `settle_s` (from its `creationTimestamp`, the API
  server's clock: the leader's must agree with it, as NTP keeps it). Until then
  its observed version stays (`held`, with everything it names) and the
  ModelService's status waits too;
- broken after: an object no longer wanted is deleted only once nothing kept needs
  it and that has been so for more than `settle_s` (stamp `UNUSED_SINCE`, set by a
  merge patch, removed again when the object is wanted or needed again);
- at once: every other change. A route seen for the first time (its requests had
  no route before), objects nobody names yet, and changes of an object in place
  (same name, new content: Traefik swaps a provider's whole configuration at once).

Only objects labelled with their ModelService (`SERVICE_LABEL`) are handed over this way;
the Gateway and its redirect route change at once. The times live on the objects, so a
restarted or new leader carries on where the last one stopped. Times are the whole seconds
of `now` (RFC 3339): an interval has passed when more than `settle_s` whole seconds lie
between its stamps, so at least `settle_s` real seconds.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelplane.wellknown import Json

from gateway_config.render import RELAY_ROUTE, SERVICE_LABEL

Obj = Mapping[str, Any]
Key = tuple[str, str, str]
"""(kind, namespace, name); namespace is "" for cluster-scoped kinds."""

UNUSED_SINCE = "modelplane.ai/unused-since"
DEFAULT_SETTLE_S = 3
REFERRING = ("HTTPRoute", "TraefikService")
SERVICE_PARTS = ("EndpointSlice", "BackendTLSPolicy", "ConfigMap")
"""Kinds named like the Service they serve (its addresses, its TLS settings)."""


def key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"])


def differs(observed: Obj | None, wanted: Obj) -> bool:
    """Whether `wanted` must be applied over `observed` (list items carry no apiVersion)."""
    body = {k: v for k, v in wanted.items() if k not in ("apiVersion", "kind")}
    return observed is None or not covers(observed, body)


def covers(observed: Any, wanted: Any) -> bool:
    """Whether `observed` holds everything `wanted` says (fields the server added aside)."""
    if isinstance(wanted, Mapping):
        return isinstance(observed, Mapping) and all(
            k in observed and covers(observed[k], v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        observed = [] if observed is None else observed
        return (
            isinstance(observed, list)
            and len(observed) == len(wanted)
            and all(covers(o, w) for o, w in zip(observed, wanted, strict=True))
        )
    return bool(observed == wanted)


@dataclass(frozen=True, slots=True)
class Plan:
    apply: tuple[Json, ...] = ()
    """Wanted objects to apply, missing or different from what is observed."""
    held: frozenset[Key] = frozenset()
    """Observed routes and TraefikServices left as they are until what they will need settles."""
    delete: tuple[Key, ...] = ()
    annotate: tuple[tuple[Key, str | None], ...] = ()
    """`UNUSED_SINCE` to set (a time) or remove (None) on observed objects."""
    recheck_s: float | None = None
    """When a pass must look again (a stamp falling due), if no watched change comes first."""


def _seconds(stamp: str) -> int:
    moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(moment.timestamp())


def _annotation(obj: Obj | None, name: str) -> str | None:
    if obj is None:
        return None
    value = (obj["metadata"].get("annotations") or {}).get(name)
    return str(value) if value else None


def handed_over(obj: Obj) -> bool:
    """Whether `obj` is one of a ModelService's objects (ordered in time by `plan`)."""
    return SERVICE_LABEL in (obj["metadata"].get("labels") or {})


def _load_balancer(namespace: str, spec: Obj) -> set[Key]:
    """What a Traefik LoadBalancerSpec (a failover link's service or fallback) names."""
    kind = str(spec.get("kind") or "Service")
    found = {(kind, namespace, str(spec["name"]))}
    found |= {("Middleware", namespace, str(m["name"])) for m in spec.get("middlewares") or []}
    return found


def _filters(namespace: str, filters: Iterable[Obj]) -> set[Key]:
    return {
        ("Middleware", namespace, str(f["extensionRef"]["name"]))
        for f in filters
        if f.get("type") == "ExtensionRef"
    }


def needs(obj: Obj) -> set[Key]:
    """The managed objects `obj` names directly: a route's Middlewares, Services and
    TraefikServices; a failover link's; a Service's parts and the route relaying it."""
    kind, namespace, name = key(obj)
    spec = obj.get("spec") or {}
    found: set[Key] = set()
    if kind == "HTTPRoute":
        for rule in spec.get("rules") or []:
            found |= _filters(namespace, rule.get("filters") or [])
            for ref in rule.get("backendRefs") or []:
                found.add((str(ref.get("kind") or "Service"), namespace, str(ref["name"])))
                found |= _filters(namespace, ref.get("filters") or [])
    elif kind == "TraefikService":
        link = spec.get("failover") or {}
        for part in ("service", "fallback"):
            if part in link:
                found |= _load_balancer(namespace, link[part])
    elif kind == "Service":
        found |= {(part, namespace, name) for part in SERVICE_PARTS}
        relay = _annotation(obj, RELAY_ROUTE)
        if relay:
            found.add(("HTTPRoute", namespace, relay))
    return found


def _closure(roots: Iterable[Key], content: Mapping[Key, Obj]) -> set[Key]:
    """`roots` and everything they need, followed through `content` (unknown keys dropped)."""
    found: set[Key] = set()
    todo = [k for k in roots if k in content]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        todo += [k for k in needs(content[current]) if k in content and k not in found]
    return found


def plan(
    desired: Mapping[Key, Json], observed: Mapping[Key, Obj], now: str, settle_s: float
) -> Plan:
    """The writes that take the observed objects towards `desired` without breaking a route."""
    now_s = _seconds(now)
    pool: dict[Key, Obj] = {**observed, **desired}
    due: list[int] = []

    def settled(k: Key) -> bool:
        found = observed.get(k)
        if found is None or found["metadata"].get("deletionTimestamp"):
            due.append(now_s + int(settle_s) + 1)
            return False
        stamp = found["metadata"].get("creationTimestamp")
        if stamp is None or now_s - _seconds(stamp) > settle_s:
            return True
        due.append(_seconds(stamp) + int(settle_s) + 1)
        return False

    held: set[Key] = set()
    for k, obj in desired.items():
        if k[0] in REFERRING and handed_over(obj) and k in observed and differs(observed[k], obj):
            pending = [n for n in _closure(needs(obj), pool) if not settled(n)]
            if pending:
                held.add(k)
    kept: dict[Key, Obj] = {k: observed[k] if k in held else o for k, o in desired.items()}
    used = _closure(kept, {**observed, **kept})
    annotate: list[tuple[Key, str | None]] = []
    delete: list[Key] = []
    for k, seen in observed.items():
        since = _annotation(seen, UNUSED_SINCE)
        if k in used:
            if since is not None:
                annotate.append((k, None))
        elif not handed_over(seen):
            delete.append(k)
        elif since is None:
            annotate.append((k, now))
            due.append(now_s + int(settle_s) + 1)
        elif now_s - _seconds(since) > settle_s:
            delete.append(k)
        else:
            due.append(_seconds(since) + int(settle_s) + 1)
    apply = tuple(
        obj for k, obj in desired.items() if k not in held and differs(observed.get(k), obj)
    )
    recheck = max(min(due) - now_s, 1) if due else None
    return Plan(apply, frozenset(held), tuple(delete), tuple(annotate), recheck)
