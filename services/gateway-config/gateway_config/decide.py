"""What one gateway-config pass changes, decided from the observed objects (pure).

Input (`Snapshot`): every InferenceGateway, ModelService and ModelEndpoint as
the API returns them, the observed control Gateway and GatewayClass, the CA
bundle ConfigMap `Settings.backend_ca` names (if any), every object
carrying gateway-config's managed-by label, and the key Secrets (with keys
required, each ModelService's key Middleware holds their table,
`gateway_config.keys`). Output (`Decision`):

- `apply`: the objects to server-side apply, only those missing or different
  from what is observed, in an order that never routes to a Service before it
  and its TLS settings exist (GatewayClass, Gateway, ConfigMaps, Services,
  EndpointSlices, BackendTLSPolicies, Middlewares, failover TraefikServices,
  HTTPRoutes, the hop listener's before the client listener's); a ModelService's
  route changed to name a new object waits until that object has settled
  (`gateway_config.handover`: make before break, across passes);
- `managed`: the keys of every managed object that should exist; `delete`: the
  observed managed objects outside it (routes first) once no route has named them
  for `Settings.settle_s` (`annotate` stamps when that began), so a restart mid-way or a
  withdrawn endpoint converges instead of leaving orphans; `recheck_s`: when a pass
  must run again for such a stamp falling due;
- `status`: merge patches for the status subresources that changed (a ModelService's
  only once its route is applied);
- `problems`: the key Secrets left out, by name and field.

Every backend that is not h2c is reached through the h2c hop
(`gateway_config.hop`): its hop Service points at the observed Gateway's own
status address on `Settings.hop_port` (no endpoint while it has none) and an
HTTPRoute on the hop listener relays to the backend.

Only the InferenceGateway `default` gets a Gateway; a ModelService or
ModelEndpoint being deleted is left to garbage collection; an endpoint whose
URL is malformed is not routed and says why, and nothing else changes because
of it. With `backend_ca` set, https backends named by host trust that bundle
only; while it is missing or empty they are not routed (never trusted any
other way) and their ModelService says so. Time comes in as `now`; nothing
here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelplane.wellknown import Json

from gateway_config import activation, failover, handover, hop, keys, limits, render, retry, status
from gateway_config.backends import Backend, backend, by_entry, select
from gateway_config.failover import Tier
from gateway_config.handover import Key, covers, differs, key
from gateway_config.hop import Hop
from gateway_config.render import CA_KEY

Obj = Mapping[str, Any]
__all__ = ["Decision", "Key", "Settings", "Snapshot", "StatusPatch", "covers", "decide", "differs"]

APPLY_ORDER = (
    "GatewayClass", "Gateway", "ConfigMap", "Service", "EndpointSlice", "BackendTLSPolicy",
    "Middleware", "TraefikService", "HTTPRoute",
)  # fmt: skip
DELETE_ORDER = (
    "HTTPRoute", "TraefikService", "Middleware", "Gateway", "BackendTLSPolicy",
    "EndpointSlice", "Service", "ConfigMap",
)  # fmt: skip
STATUS_FIELDS = ("observedGeneration", "conditions", "address")


@dataclass(frozen=True, slots=True)
class Settings:
    gateway_class: str = "traefik"
    port: int = 80
    namespace: str = "modelplane-system"
    backend_ca: str | None = None
    """A ConfigMap of `namespace` whose `ca.crt` (PEM) https backends trust instead of the
    system's CAs."""
    hop_port: int = hop.DEFAULT_PORT
    """The port of the Gateway's `hop` listener (an entrypoint of the same Traefik, apart
    from `port`): the h2c hop to every backend that is not h2c."""
    https_port: int = 443
    """The port of the Gateway's `https` listener, used when the InferenceGateway names a
    certificate (`spec.tls.secretName`)."""
    retries: bool = True
    """Whether each ModelService's route retries through its Traefik Middleware
    (`gateway_config.retry`; needs Traefik's Kubernetes CRD provider and its CRDs)."""
    retry_max_body_bytes: int = retry.UNBOUNDED_BODY
    """The most of a request body the retry Middlewares hold to replay it (`retry.spec`);
    `retry.UNBOUNDED_BODY`: all of it, as it comes."""
    auth_url: str = "http://127.0.0.1:9095"
    """Where Traefik's key plugin reports its per-key counts to gateway-config's key server
    (`gateway_config.keyserver`), when the InferenceGateway requires keys."""
    key_namespace: str = keys.DEFAULT_NAMESPACE
    """The namespace of the key Secrets (`gateway_config.keys`)."""
    activator_url: str | None = None
    """Where the activator listens: a ModelService with `spec.scaleToZero` and no routed
    endpoint is routed there (`gateway_config.activation`); None: it answers 503 at once."""
    settle_s: int = handover.DEFAULT_SETTLE_S
    """How long a ModelService's new object exists before a route names it, and an object no
    route names any more is kept (`gateway_config.handover`): longer than Traefik takes to
    load a change through both its providers."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    inference_gateways: Sequence[Obj] = ()
    model_services: Sequence[Obj] = ()
    model_endpoints: Sequence[Obj] = ()
    gateway: Obj | None = None
    gateway_class: Obj | None = None
    backend_ca: Obj | None = None
    managed: Sequence[Obj] = ()
    api_keys: Sequence[Obj] = ()
    """The labelled Secrets of the key namespace (`gateway_config.keys`)."""


@dataclass(frozen=True, slots=True)
class StatusPatch:
    kind: str
    namespace: str
    name: str
    generation: int
    status: Json = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    apply: tuple[Json, ...] = ()
    managed: frozenset[Key] = frozenset()
    delete: tuple[Key, ...] = ()
    status: tuple[StatusPatch, ...] = ()
    problems: tuple[str, ...] = ()
    """Key Secrets left out, by name and field (`keys.Table.problems`; with keys required)."""
    annotate: tuple[tuple[Key, str | None], ...] = ()
    """`handover.UNUSED_SINCE` to set (a time) or remove (None) on managed objects."""
    recheck_s: float | None = None
    """Seconds until a pass must run again for a handover falling due (None: no need)."""


def _deleting(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _patch(obj: Obj, wanted: Json) -> StatusPatch | None:
    """A merge patch turning the observed status into `wanted`, or None when equal."""
    previous = obj.get("status") or {}
    if all(previous.get(f) == wanted.get(f) for f in STATUS_FIELDS):
        return None
    body = dict(wanted)
    for f in STATUS_FIELDS:
        if f in previous and f not in wanted:
            body[f] = None
    kind, namespace, name = key(obj)
    return StatusPatch(kind, namespace, name, int(obj["metadata"].get("generation", 1)), body)


def _gateway_objects(
    snapshot: Snapshot, settings: Settings, now: str
) -> tuple[list[Json], list[StatusPatch], str | None, str]:
    """The GatewayClass, the Gateway (and with TLS the redirect route), the status patches,
    the front door's address and the listener ModelService routes attach to."""
    objects: list[Json] = []
    patches: list[StatusPatch] = []
    ref = f"{settings.namespace}/{render.GATEWAY_NAME}"
    address, listener = None, render.LISTENER
    for ig in sorted(snapshot.inference_gateways, key=lambda o: str(o["metadata"]["name"])):
        if _deleting(ig):
            continue
        with_tls = render.tls_secret(ig) is not None
        port, scheme = (settings.https_port, "https") if with_tls else (settings.port, "http")
        wanted = status.inference_gateway(
            ig, snapshot.gateway, ref, settings.gateway_class, port, now, scheme
        )
        if ig["metadata"]["name"] == status.DEFAULT_GATEWAY:
            objects.append(render.gateway_class(settings.gateway_class))
            objects.append(
                render.gateway(
                    ig, settings.namespace, settings.gateway_class, settings.port,
                    settings.hop_port, settings.https_port,
                )
            )  # fmt: skip
            if with_tls:
                objects.append(render.https_redirect(ig, settings.namespace, settings.https_port))
            address, listener = wanted.get("address"), render.client_listener(ig)
        patch = _patch(ig, wanted)
        if patch is not None:
            patches.append(patch)
    return objects, patches, address, listener


def _trust(snapshot: Snapshot, settings: Settings) -> tuple[str | None, str | None]:
    """The PEM bundle https backends trust instead of the system's CAs (None: the system's),
    and why, when one is configured but unusable, no https backend named by host is routed."""
    if settings.backend_ca is None:
        return None, None
    bundle = str(((snapshot.backend_ca or {}).get("data") or {}).get(CA_KEY) or "")
    if bundle.strip():
        return bundle, None
    where = f"ConfigMap {settings.namespace}/{settings.backend_ca}"
    return None, (
        f"the backend CA bundle ({where}, key {CA_KEY}) is missing or empty, "
        "so the certificate of this https endpoint cannot be verified"
    )


def _service_objects(
    service: Obj,
    endpoints: Sequence[Obj],
    backends: Mapping[Key, Backend | str],
    settings: Settings,
    trust: tuple[str | None, str | None],
    via: Hop,
    listener: str,
) -> tuple[list[Json], list[str], list[str], list[int]]:
    """The objects of one ModelService (its route on the client `listener`), the endpoint
    names it routes to, the messages of matched endpoints it cannot route, and the indexes
    of entries matching nothing."""
    matched, empty = select(service, endpoints)
    ca_bundle, untrusted = trust
    routed: list[Backend] = []
    unrouted: list[str] = []
    for endpoint in matched:
        found = backends[key(endpoint)]
        if isinstance(found, Backend) and found.tls_hostname and untrusted:
            meta = endpoint["metadata"]
            found = f"ModelEndpoint {meta['namespace']}/{meta['name']}: {untrusted}"
        if isinstance(found, str):
            unrouted.append(found)
        else:
            routed.append(found)
    activator = activation.backend(service, settings.activator_url, len(routed))
    if activator is not None:
        held = activation.objects(service, activator, settings.namespace, via, listener)
        return held, [], unrouted, empty
    entries = _routed_entries(service, endpoints, {b.name for b in routed})
    tiers = failover.tiers(entries)
    # bounds and fallbacks are Traefik Middlewares and TraefikServices, like the retries
    bounds = limits.endpoint_limits(entries) if settings.retries else {}
    if settings.retries and len(tiers) > 1:
        objects = _tiered_objects(
            service, routed, tiers, settings, ca_bundle, via, bounds, listener
        )
        return objects, [b.name for b in routed], unrouted, empty
    first = failover.serving(tiers)
    chosen = [b for b in routed if b.name in first.endpoints]
    objects = []
    targets: list[Backend | None] = [*chosen] or [None]
    for target in targets:
        objects.extend(render.backend_objects(service, target, ca_bundle, via))
    # hop routes first: the service's route must never send a request to the hop listener
    # before that listener routes it on
    objects += [render.hop_route(service, b, settings.namespace) for b in chosen if hop.needed(b)]
    if settings.retries:
        objects.append(render.retry_middleware(service, settings.retry_max_body_bytes))
    chosen_bounds = {n: b for n, b in bounds.items() if n in first.endpoints}
    objects += render.limit_middlewares(service, chosen_bounds)
    objects.append(
        render.route(
            service, chosen, settings.namespace, via, first.weights, settings.retries,
            chosen_bounds, listener,
        )
    )  # fmt: skip
    return objects, [b.name for b in routed], unrouted, empty


def _tiered_objects(
    service: Obj,
    routed: Sequence[Backend],
    tiers: Sequence[Tier],
    settings: Settings,
    ca_bundle: str | None,
    via: Hop,
    bounds: Mapping[str, int],
    listener: str,
) -> list[Json]:
    """A service with fallbacks (`gateway_config.failover`): each backend's objects (no hop
    of its own: its tier's route is already reached over h2c), each tier's, the failover
    links and the route to the first link."""
    objects: list[Json] = []
    targets: list[Backend | None] = [*routed]
    if not all(tier.weights for tier in tiers):
        targets.append(None)  # the stand-in of a tier without endpoints: a prompt 503
    for target in targets:
        objects.extend(render.backend_objects(service, target, ca_bundle))
    objects.append(render.tier_retry_middleware(service))
    objects += render.limit_middlewares(service, bounds)
    for tier in tiers:
        members = [b for b in routed if b.name in tier.endpoints]
        objects += render.tier_objects(service, tier, members, via, settings.namespace, bounds)
    objects.extend(render.failover_links(service, tiers, via))
    objects.append(render.failover_route(service, tiers, settings.namespace, listener))
    return objects


def _routed_entries(
    service: Obj, endpoints: Sequence[Obj], routed: set[str]
) -> list[tuple[Obj, list[str]]]:
    """Each entry of the service with the names of its matched endpoints that are routed:
    what its tiers (`gateway_config.failover`), weights (`gateway_config.weights`) and
    bounds (`gateway_config.limits`) are worked out from."""
    entries = (service.get("spec") or {}).get("endpoints") or []
    found = by_entry(service, endpoints)
    return [
        (entry, [n for e in matched if (n := e["metadata"]["name"]) in routed])
        for entry, matched in zip(entries, found, strict=True)
    ]


def decide(snapshot: Snapshot, settings: Settings, now: str) -> Decision:
    """The pass's writes; `now` is an RFC 3339 timestamp for new conditions."""
    objects, patches, address, listener = _gateway_objects(snapshot, settings, now)
    endpoints = [e for e in snapshot.model_endpoints if not _deleting(e)]
    backends = {key(e): backend(e) for e in endpoints}
    trust = _trust(snapshot, settings)
    via = Hop(settings.hop_port, hop.gateway_host(snapshot.gateway))
    with_keys = keys.required(snapshot.inference_gateways)
    hop_token = keys.hop_token(snapshot.inference_gateways)
    counter = keys.counts_token(snapshot.inference_gateways)
    table = keys.table(snapshot.api_keys) if with_keys else keys.Table()
    service_patches: list[tuple[str, StatusPatch]] = []
    for service in sorted(snapshot.model_services, key=key):
        if _deleting(service):
            continue
        owned, routed, unrouted, empty = _service_objects(
            service, endpoints, backends, settings, trust, via, listener
        )
        meta = service["metadata"]
        check = (
            keys.plugin_spec(table, meta["namespace"], meta["name"], settings.auth_url, counter)
            if with_keys
            else None
        )
        objects.extend(render.guarded(service, owned, check, hop_token))
        wanted = status.model_service(service, routed, unrouted, empty, address, now)
        patch = _patch(service, wanted)
        if patch is not None:
            service_patches.append((str(service["metadata"].get("uid")), patch))
    endpoint_patches = []
    for endpoint in sorted(endpoints, key=key):
        found = backends[key(endpoint)]
        wanted = status.model_endpoint(endpoint, found if isinstance(found, str) else None, now)
        patch = _patch(endpoint, wanted)
        if patch is not None:
            endpoint_patches.append(patch)

    observed = {key(o): o for o in snapshot.managed}
    if snapshot.gateway_class is not None:
        observed[key(snapshot.gateway_class)] = snapshot.gateway_class
    desired = {key(o): o for o in objects}
    plan = handover.plan(desired, observed, now, settings.settle_s)
    changed = sorted(plan.apply, key=lambda o: APPLY_ORDER.index(o["kind"]))
    managed = frozenset(k for k in desired if k[0] != "GatewayClass")
    stale = sorted(
        (k for k in plan.delete if k[0] in DELETE_ORDER),
        key=lambda k: (DELETE_ORDER.index(k[0]), k),
    )
    # a ModelService's status follows its route: not while the route waits for its objects
    waiting = {_owner_uid(observed[k]) for k in plan.held}
    patches += [patch for uid, patch in service_patches if uid not in waiting]
    patches += endpoint_patches
    return Decision(
        tuple(changed), managed, tuple(stale), tuple(patches), tuple(table.problems),
        plan.annotate, plan.recheck_s,
    )  # fmt: skip


def _owner_uid(obj: Obj) -> str:
    owners = obj["metadata"].get("ownerReferences") or [{}]
    return str(owners[0].get("uid"))
