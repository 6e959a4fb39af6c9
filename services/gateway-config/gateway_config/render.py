"""The Kubernetes objects gateway-config writes, built from their owners (pure).

- `gateway_class` and `gateway`: the front door. The Gateway has two HTTP
  listeners accepting routes from every namespace, `http` (clients) and `hop`
  (the h2c hop, `gateway_config.hop`), and is owned by the InferenceGateway
  `default`.
- Per ModelService `<ns>/<name>`: `route`, the HTTPRoute `<ns>/<name>` with one
  rule matching `PathPrefix /<ns>/<name>/`, the `ExtensionRef` filter of the
  service's retry Middleware (`retry_middleware`, same name, see
  `gateway_config.retry`), and one backendRef per backend, weighted as
  `gateway_config.weights` decides (1 when no weights are given), each with its
  own URLRewrite (`ReplacePrefixMatch` with the endpoint's `rewritePath`, plus
  the Host header for named hosts); no request timeout, so streams are never
  cut by the route. Each backend is a
  selectorless headless Service plus an EndpointSlice (`backend_objects`); a
  service with no backend keeps one backendRef to a Service whose EndpointSlice
  lists no endpoint, which Traefik answers with a prompt 503 (a Service without
  any EndpointSlice would be a 500, a route without backendRefs a 500 too).
  An `https` backend named by host also gets a BackendTLSPolicy (same name),
  so the gateway speaks TLS to it with that host as SNI and verifies the
  certificate against that host and the system's CAs, or, given a CA bundle,
  against a ConfigMap of that bundle (same name, key `ca.crt`) only.
- A backend that is not h2c is not a backendRef of `route` itself: the route
  points at its hop Service (`hop_name`, an EndpointSlice of the gateway's own
  address on the hop port, h2c), rewriting the prefix to the backend's hop
  prefix, and `hop_route` (named like the backend's Service, on the `hop`
  listener) matches that prefix and carries the backendRef described above.

Every namespaced object carries `MANAGED_BY` (so the controller can prune what
is no longer wanted) and a controller owner reference to its ModelService (so
deleting the service deletes them). Names derive from the owners only: the
same inputs give the same names on every run, at most 63 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from modelplane.endpoints import service_prefix
from modelplane.naming import shorten
from modelplane.wellknown import API_VERSION, MANAGED_BY, Json

from gateway_config import failover, keys, limits, retry
from gateway_config import hop as hops
from gateway_config.backends import H2C, AddressType, Backend
from gateway_config.failover import Tier
from gateway_config.hop import Hop

Obj = Mapping[str, Any]

GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"
CONTROLLER_NAME = "traefik.io/gateway-controller"
GATEWAY_NAME = "modelplane-gateway"
LISTENER = "http"
HTTPS_LISTENER = "https"
REDIRECT_NAME = "modelplane-https-redirect"
MANAGER = "modelplane-gateway-config"
SERVICE_LABEL = "modelplane.ai/model-service"
RELAY_ROUTE = "modelplane.ai/relay-route"
"""On a hop or tier Service (an address of the gateway's own hop listener): the HTTPRoute
there that relays what is sent to it (`gateway_config.handover` follows it)."""
ENDPOINT_LABEL = "modelplane.ai/model-endpoint"
SLICE_MANAGER = "gateway-config.modelplane.ai"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
NO_ENDPOINTS = "no-endpoints"
CA_KEY = "ca.crt"
SYSTEM_CAS = "System"


def _label_value(value: str) -> str:
    return shorten(value).rstrip("-_.")


def _dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def backend_name(service: str, endpoint: str | None) -> str:
    """The Service (and EndpointSlice) of one backend of ModelService `service`:
    `mp-<service>-<endpoint>-<hash>`, a DNS label of at most 63 characters; the
    hash of the pair keeps distinct pairs apart even when the readable part collides."""
    part = NO_ENDPOINTS if endpoint is None else endpoint
    digest = hashlib.sha256(f"{service}/{part}".encode()).hexdigest()[:8]
    readable = shorten(_dns_label(f"mp-{service}-{part}"), 54).rstrip("-.")
    return f"{readable}-{digest}"


def hop_name(service: str, endpoint: str) -> str:
    """The Service (and EndpointSlice) through which the front door reaches one backend of
    ModelService `service` over the h2c hop: `mp-hop-<service>-<endpoint>-<hash>`, a DNS
    label of at most 63 characters, never equal to a `backend_name`."""
    digest = hashlib.sha256(f"hop:{service}/{endpoint}".encode()).hexdigest()[:8]
    readable = shorten(_dns_label(f"mp-hop-{service}-{endpoint}"), 54).rstrip("-.")
    return f"{readable}-{digest}"


def tier_name(service: str, priority: int) -> str:
    """The Service, EndpointSlice, addPrefix Middleware and hop-listener HTTPRoute of tier
    `priority` of ModelService `service` (`gateway_config.failover`):
    `mp-tier-<service>-<priority>-<hash>`, never equal to another name here."""
    digest = hashlib.sha256(f"tier:{service}/{priority}".encode()).hexdigest()[:8]
    readable = shorten(_dns_label(f"mp-tier-{service}-{priority}"), 54).rstrip("-.")
    return f"{readable}-{digest}"


def link_name(service: str, priority: int) -> str:
    """The failover TraefikService whose first choice is tier `priority` of `service`."""
    digest = hashlib.sha256(f"failover:{service}/{priority}".encode()).hexdigest()[:8]
    readable = shorten(_dns_label(f"mp-failover-{service}-{priority}"), 54).rstrip("-.")
    return f"{readable}-{digest}"


def limit_name(service: str, endpoint: str) -> str:
    """The inFlightReq Middleware bounding ModelService `service`'s requests at `endpoint`."""
    digest = hashlib.sha256(f"limit:{service}/{endpoint}".encode()).hexdigest()[:8]
    readable = shorten(_dns_label(f"mp-limit-{service}-{endpoint}"), 54).rstrip("-.")
    return f"{readable}-{digest}"


def auth_name(service: str) -> str:
    """The key plugin's Middleware checking the API keys of ModelService `service`."""
    digest = hashlib.sha256(f"auth:{service}".encode()).hexdigest()[:8]
    readable = shorten(_dns_label(f"mp-auth-{service}"), 54).rstrip("-.")
    return f"{readable}-{digest}"


def tier_retry_name(service: str) -> str:
    """The retry Middleware of the tier routes of ModelService `service`."""
    digest = hashlib.sha256(f"tier-retry:{service}".encode()).hexdigest()[:8]
    readable = shorten(_dns_label(f"mp-tier-retry-{service}"), 54).rstrip("-.")
    return f"{readable}-{digest}"


def owner(obj: Obj) -> Json:
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", API_VERSION),
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


def _metadata(name: str, namespace: str, owned_by: Obj, **labels: str) -> Json:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY: MANAGER, **labels},
        "ownerReferences": [owner(owned_by)],
    }


def gateway_class(name: str) -> Json:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": CONTROLLER_NAME},
    }


def _listener(name: str, port: int) -> Json:
    return {
        "name": name,
        "protocol": "HTTP",
        "port": port,
        "allowedRoutes": {"namespaces": {"from": "All"}},
    }


def tls_secret(inference_gateway: Obj) -> str | None:
    """The Secret of the front door's certificate (`spec.tls.secretName`), or None: HTTP."""
    tls = (inference_gateway.get("spec") or {}).get("tls") or {}
    name = tls.get("secretName")
    return str(name) if name else None


def client_listener(inference_gateway: Obj | None) -> str:
    """The listener ModelService routes attach to: `https` with a certificate, else `http`."""
    with_tls = inference_gateway is not None and tls_secret(inference_gateway) is not None
    return HTTPS_LISTENER if with_tls else LISTENER


def gateway(
    inference_gateway: Obj,
    namespace: str,
    class_name: str,
    port: int,
    hop_port: int,
    https_port: int = 443,
) -> Json:
    """The front door: listener `http` on `port` for clients, `hop` on `hop_port` for the
    h2c hop (Traefik matches a listener to an entrypoint by port, so they must differ)
    and, given `spec.tls.secretName`, `https` on `https_port` terminating TLS with that
    Secret (then `http` only redirects, `https_redirect`)."""
    listeners = [_listener(LISTENER, port), _listener(hops.LISTENER, hop_port)]
    secret = tls_secret(inference_gateway)
    if secret is not None:
        https = _listener(HTTPS_LISTENER, https_port)
        https["protocol"] = "HTTPS"
        https["tls"] = {
            "mode": "Terminate",
            "certificateRefs": [{"group": "", "kind": "Secret", "name": secret}],
        }
        listeners.append(https)
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": _metadata(GATEWAY_NAME, namespace, inference_gateway),
        "spec": {"gatewayClassName": class_name, "listeners": listeners},
    }


def https_redirect(inference_gateway: Obj, namespace: str, https_port: int) -> Json:
    """The HTTPRoute `modelplane-https-redirect` on listener `http`: every request gets a
    301 to the same path over HTTPS (the port named unless 443)."""
    redirect: Json = {"scheme": "https", "statusCode": 301}
    if https_port != 443:
        redirect["port"] = https_port
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "filters": [{"type": "RequestRedirect", "requestRedirect": redirect}],
    }
    metadata = _metadata(REDIRECT_NAME, namespace, inference_gateway)
    return _http_route(metadata, namespace, LISTENER, rule)


def _labels(service: Obj, endpoint: str | None) -> dict[str, str]:
    labels = {SERVICE_LABEL: _label_value(service["metadata"]["name"])}
    if endpoint is not None:
        labels[ENDPOINT_LABEL] = _label_value(endpoint)
    return labels


def _service(
    service: Obj, name: str, port: int, scheme: str, protocol: str, endpoint: str | None,
    relay: str | None = None,
) -> Json:  # fmt: skip
    meta = service["metadata"]
    metadata = _metadata(name, meta["namespace"], service, **_labels(service, endpoint))
    if relay is not None:
        metadata["annotations"] = {RELAY_ROUTE: relay}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "ports": [
                {
                    "name": scheme,
                    "port": port,
                    "targetPort": port,
                    "protocol": "TCP",
                    "appProtocol": protocol,
                }
            ],
        },
    }


def _slice(
    service: Obj,
    name: str,
    port: int,
    scheme: str,
    protocol: str,
    endpoint: str | None,
    address: tuple[str | None, AddressType],
) -> Json:
    """The EndpointSlice of Service `name`: `address` (host or None for none, and its type)."""
    meta = service["metadata"]
    labels = {
        **_labels(service, endpoint),
        SERVICE_NAME_LABEL: name,
        SLICE_MANAGED_BY: SLICE_MANAGER,
    }
    host, address_type = address
    endpoints = [] if host is None else [{"addresses": [host], "conditions": {"ready": True}}]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _metadata(name, meta["namespace"], service, **labels),
        "addressType": address_type,
        "ports": [{"name": scheme, "port": port, "protocol": "TCP", "appProtocol": protocol}],
        "endpoints": endpoints,
    }


def _tls(service: Obj, name: str, backend: Backend, ca_bundle: str | None) -> list[Json]:
    """The BackendTLSPolicy of backend Service `name` (none for a backend not verified by host
    name) and, with `ca_bundle`, the ConfigMap of the CAs it trusts instead of the system's."""
    hostname = backend.tls_hostname
    if hostname is None:
        return []
    namespace = service["metadata"]["namespace"]
    labels = _labels(service, backend.name)
    validation: Json = {"hostname": hostname, "wellKnownCACertificates": SYSTEM_CAS}
    if ca_bundle is not None:
        refs = [{"group": "", "kind": "ConfigMap", "name": name}]
        validation = {"caCertificateRefs": refs, "hostname": hostname}
    policy = {
        "apiVersion": GATEWAY_API,
        "kind": "BackendTLSPolicy",
        "metadata": _metadata(name, namespace, service, **labels),
        "spec": {
            "targetRefs": [{"group": "", "kind": "Service", "name": name}],
            "validation": validation,
        },
    }
    if ca_bundle is None:
        return [policy]
    bundle = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(name, namespace, service, **labels),
        "data": {CA_KEY: ca_bundle},
    }
    return [policy, bundle]


def backend_objects(
    service: Obj,
    backend: Backend | None,
    ca_bundle: str | None = None,
    hop: Hop | None = None,
) -> list[Json]:
    """The Service and EndpointSlice of one backend (None: the empty stand-in), plus, for an
    https backend named by host, its BackendTLSPolicy trusting the system's CAs or, given
    `ca_bundle` (PEM), the ConfigMap of that bundle alone; plus, given `hop` and a backend
    that is not h2c, the Service and EndpointSlice of its hop (the gateway itself, h2c)."""
    endpoint = None if backend is None else backend.name
    name = backend_name(service["metadata"]["name"], endpoint)
    port = 80 if backend is None else backend.port
    scheme = "http" if backend is None else backend.scheme
    protocol = "http" if backend is None else backend.app_protocol
    address: tuple[str | None, AddressType] = (
        (None, "IPv4") if backend is None else (backend.host, backend.address_type)
    )
    objects = [
        _service(service, name, port, scheme, protocol, endpoint),
        _slice(service, name, port, scheme, protocol, endpoint, address),
    ]
    if backend is None:
        return objects
    objects += _tls(service, name, backend, ca_bundle)
    if hop is not None and hops.needed(backend):
        via = hop_name(service["metadata"]["name"], backend.name)
        objects += [
            _service(service, via, hop.port, "http", H2C, endpoint, relay=name),
            _slice(service, via, hop.port, "http", H2C, endpoint, (hop.host, hop.address_type)),
        ]
    return objects


def _rewrite(replace_prefix: str, hostname: str | None = None) -> list[Json]:
    rewrite: Json = {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": replace_prefix}}
    if hostname is not None:
        rewrite = {"hostname": hostname, **rewrite}
    return [{"type": "URLRewrite", "urlRewrite": rewrite}]


def _limit(service: Obj, backend: Backend, bounds: Mapping[str, int]) -> list[Json]:
    """The filter of the endpoint's inFlightReq Middleware, if it is bounded."""
    if backend.name not in bounds:
        return []
    return [retry.filter_ref(limit_name(service["metadata"]["name"], backend.name))]


def _hop_ref(
    service: Obj, backend: Backend, hop: Hop, weight: int = 1, bounds: Mapping[str, int] = {}
) -> Json:
    """To `backend` through the hop: its hop Service, the prefix turned into its hop prefix."""
    meta = service["metadata"]
    rewrite = _rewrite(hops.prefix(meta["namespace"], meta["name"], backend.name))
    return {
        "group": "",
        "kind": "Service",
        "name": hop_name(meta["name"], backend.name),
        "port": hop.port,
        "weight": weight,
        "filters": rewrite + _limit(service, backend, bounds),
    }


def _backend_ref(
    service: Obj, backend: Backend | None, weight: int = 1, bounds: Mapping[str, int] = {}
) -> Json:
    endpoint = None if backend is None else backend.name
    ref: Json = {
        "group": "",
        "kind": "Service",
        "name": backend_name(service["metadata"]["name"], endpoint),
        "port": 80 if backend is None else backend.port,
        "weight": weight,
    }
    if backend is not None:
        hostname = backend.host if backend.address_type == "FQDN" else None
        ref["filters"] = _rewrite(backend.rewrite_path, hostname) + _limit(service, backend, bounds)
    return ref


def path_prefix(service: Obj) -> str:
    meta = service["metadata"]
    return service_prefix(meta["namespace"], meta["name"])


def _route(
    service: Obj, name: str, labels: dict[str, str], listener: str, prefix: str,
    refs: list[Json], gateway_namespace: str, filters: list[Json] | None = None,
) -> Json:  # fmt: skip
    meta = service["metadata"]
    rule: Json = {"matches": [{"path": {"type": "PathPrefix", "value": prefix}}]}
    if filters:
        rule["filters"] = filters
    rule["backendRefs"] = refs
    metadata = _metadata(name, meta["namespace"], service, **labels)
    return _http_route(metadata, gateway_namespace, listener, rule)


def _http_route(metadata: Json, gateway_namespace: str, listener: str, rule: Json) -> Json:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": {
            "parentRefs": [
                {
                    "group": GATEWAY_GROUP,
                    "kind": "Gateway",
                    "name": GATEWAY_NAME,
                    "namespace": gateway_namespace,
                    "sectionName": listener,
                }
            ],
            "rules": [rule],
        },
    }


def route(
    service: Obj,
    backends: Sequence[Backend],
    gateway_namespace: str,
    hop: Hop | None = None,
    weights: Mapping[str, int] | None = None,
    retries: bool = True,
    bounds: Mapping[str, int] = {},
    listener: str = LISTENER,
) -> Json:
    """The HTTPRoute of a ModelService over `backends` (none: the 503 stand-in), with
    `retries` through its retry Middleware; `weights` by endpoint name (absent: 1), the
    endpoints in `bounds` behind their inFlightReq Middleware; given `hop`, a backend that
    is not h2c is reached through its hop Service."""
    meta = service["metadata"]
    weight = dict(weights or {})
    refs = [
        _hop_ref(service, b, hop, weight.get(b.name, 1), bounds)
        if hop is not None and hops.needed(b)
        else _backend_ref(service, b, weight.get(b.name, 1), bounds)
        for b in backends
    ] or [_backend_ref(service, None)]
    labels = {SERVICE_LABEL: _label_value(meta["name"])}
    filters = [retry.filter_ref(meta["name"])] if retries else []
    filters += _bound_header(service, backends, bounds)
    return _route(
        service, meta["name"], labels, listener, path_prefix(service), refs, gateway_namespace,
        filters,
    )  # fmt: skip


def retry_middleware(service: Obj, max_body_bytes: int = retry.UNBOUNDED_BODY) -> Json:
    """The Traefik Middleware that retries a failed request of the service's route on
    another endpoint (`gateway_config.retry`, bodies up to `max_body_bytes`); named like
    the route."""
    spec = retry.spec(max_body_bytes=max_body_bytes)
    return _middleware(service, service["metadata"]["name"], spec)


def hop_route(service: Obj, backend: Backend, gateway_namespace: str) -> Json:
    """The HTTPRoute on the `hop` listener from one backend's hop prefix to the backend
    itself (its rewrite, host name and TLS policy); named like the backend's Service."""
    meta = service["metadata"]
    name = backend_name(meta["name"], backend.name)
    prefix = hops.prefix(meta["namespace"], meta["name"], backend.name)
    refs = [_backend_ref(service, backend)]
    return _route(
        service, name, _labels(service, backend.name), hops.LISTENER, prefix, refs,
        gateway_namespace,
    )  # fmt: skip


def _middleware(service: Obj, name: str, spec: Json) -> Json:
    meta = service["metadata"]
    labels = {SERVICE_LABEL: _label_value(meta["name"])}
    return {
        "apiVersion": retry.API_VERSION,
        "kind": retry.KIND,
        "metadata": _metadata(name, meta["namespace"], service, **labels),
        "spec": spec,
    }


def _bound_header(
    service: Obj, backends: Sequence[Backend], bounds: Mapping[str, int]
) -> list[Json]:
    """The rule filter that names the service for the counters of bounded endpoints."""
    if not any(b.name in bounds for b in backends):
        return []
    meta = service["metadata"]
    return [limits.header_filter(meta["namespace"], meta["name"])]


def limit_middlewares(service: Obj, bounds: Mapping[str, int]) -> list[Json]:
    """The inFlightReq Middleware of each bounded endpoint (`gateway_config.limits`)."""
    name = service["metadata"]["name"]
    return [
        _middleware(service, limit_name(name, endpoint), limits.spec(amount))
        for endpoint, amount in sorted(bounds.items())
    ]


def tier_objects(
    service: Obj,
    tier: Tier,
    backends: Sequence[Backend],
    hop: Hop,
    gateway_namespace: str,
    bounds: Mapping[str, int] = {},
) -> list[Json]:
    """Tier `tier` of a service with fallbacks (`gateway_config.failover`): the Service and
    EndpointSlice of the gateway's hop address (h2c) the failover link sends it to, the
    Middleware putting the tier's prefix in front, and the HTTPRoute on the hop listener
    from that prefix over the tier's endpoints (weighted, each with its own rewrite,
    behind the tier retry Middleware)."""
    meta = service["metadata"]
    name = tier_name(meta["name"], tier.priority)
    address = (hop.host, hop.address_type)
    refs = [_backend_ref(service, b, tier.weights[b.name], bounds) for b in backends] or [
        _backend_ref(service, None)
    ]
    prefix = failover.prefix(tier.priority) + path_prefix(service)
    labels = {SERVICE_LABEL: _label_value(meta["name"])}
    filters = [retry.filter_ref(tier_retry_name(meta["name"]))]
    filters += _bound_header(service, backends, bounds)
    return [
        _service(service, name, hop.port, "http", H2C, None, relay=name),
        _slice(service, name, hop.port, "http", H2C, None, address),
        _middleware(service, name, failover.add_prefix_spec(tier.priority)),
        _route(
            service, name, labels, hops.LISTENER, prefix, refs, gateway_namespace, filters
        ),
    ]  # fmt: skip


def tier_retry_middleware(service: Obj) -> Json:
    """The retry Middleware of a service's tier routes: 429 and 503 (overload) are not
    retried inside a tier but go on to the next (`gateway_config.failover`). It reads
    whole bodies whatever the service routes' bound: the failover link in front holds
    each body whole already."""
    name = tier_retry_name(service["metadata"]["name"])
    return _middleware(service, name, retry.spec(failover.TIER_RETRY_STATUS))


def _tier_spec(service: Obj, priority: int, hop: Hop) -> Json:
    name = tier_name(service["metadata"]["name"], priority)
    return {
        "kind": "Service",
        "name": name,
        "port": hop.port,
        "scheme": "h2c",
        "middlewares": [{"name": name}],
    }


def failover_links(service: Obj, tiers: Sequence[Tier], hop: Hop) -> list[Json]:
    """The failover TraefikServices chaining two tiers or more, the route's first: link i
    tries tier i, then link i + 1 (the last link: the last tier)."""
    meta = service["metadata"]
    labels = {SERVICE_LABEL: _label_value(meta["name"])}
    links = []
    for i, tier in enumerate(tiers[:-1]):
        last = i == len(tiers) - 2
        fallback = (
            _tier_spec(service, tiers[-1].priority, hop)
            if last
            else {"kind": failover.KIND, "name": link_name(meta["name"], tiers[i + 1].priority)}
        )
        links.append(
            {
                "apiVersion": retry.API_VERSION,
                "kind": failover.KIND,
                "metadata": _metadata(
                    link_name(meta["name"], tier.priority), meta["namespace"], service, **labels
                ),
                "spec": failover.link_spec(_tier_spec(service, tier.priority, hop), fallback),
            }
        )
    return links


def failover_route(
    service: Obj, tiers: Sequence[Tier], gateway_namespace: str, listener: str = LISTENER
) -> Json:
    """The HTTPRoute of a service with fallbacks: everything to its first failover link."""
    meta = service["metadata"]
    ref = {
        "group": retry.GROUP,
        "kind": failover.KIND,
        "name": link_name(meta["name"], tiers[0].priority),
    }
    labels = {SERVICE_LABEL: _label_value(meta["name"])}
    return _route(
        service, meta["name"], labels, listener, path_prefix(service), [ref], gateway_namespace
    )


def guarded(
    service: Obj, objects: Sequence[Json], check: Json | None, hop_token: str
) -> list[Json]:
    """A ModelService's objects with the hop token (`gateway_config.keys`): the service's own
    route sets the hop header to `hop_token` and its routes on the hop listener remove it,
    keys or not, so that switching keys on or off never leaves a hop route requiring a
    token the service route does not send yet. Given `check` (`keys.plugin_spec`, keys
    required): its Middleware added, applied first by the service's own route, whose
    RequestHeaderModifier then removes the key headers (no backend sees a caller's key), and
    the hop listener's routes match only requests carrying the token."""
    if not hop_token:
        return list(objects)
    meta = service["metadata"]
    name = auth_name(meta["name"])
    token = {"name": keys.HOP_HEADER, "value": hop_token}
    result: list[Json] = []
    for obj in objects:
        if obj["kind"] != "HTTPRoute":
            result.append(obj)
            continue
        rule = obj["spec"]["rules"][0]
        filters = rule.get("filters", [])
        if obj["metadata"]["name"] == meta["name"]:  # the client listener's
            if check is None:
                rule = {**rule, "filters": _modified(filters, {"set": [token]})}
            else:
                change = {"set": [token], "remove": list(keys.KEY_HEADERS)}
                rule = {**rule, "filters": [retry.filter_ref(name), *_modified(filters, change)]}
        elif obj["spec"]["parentRefs"][0]["sectionName"] == hops.LISTENER:
            filters = _modified(filters, {"remove": [keys.HOP_HEADER]})
            rule = {**rule, "filters": filters}
            if check is not None:
                matches = [{**m, "headers": [{"type": "Exact", **token}]} for m in rule["matches"]]
                rule["matches"] = matches
        result.append({**obj, "spec": {**obj["spec"], "rules": [rule]}})
    if check is None:
        return result
    return [_middleware(service, name, check), *result]


def _modified(filters: Sequence[Json], change: Json) -> list[Json]:
    """`filters` with `change` (`set` and `remove` lists) added to its RequestHeaderModifier
    (one per rule: a new one when there is none)."""
    modifier = "RequestHeaderModifier"
    if not any(f["type"] == modifier for f in filters):
        return [*filters, {"type": modifier, "requestHeaderModifier": change}]
    return [
        {**f, "requestHeaderModifier": _merged(f["requestHeaderModifier"], change)}
        if f["type"] == modifier
        else f
        for f in filters
    ]


def _merged(modifier: Json, change: Json) -> Json:
    return {**modifier, **{k: [*modifier.get(k, []), *v] for k, v in change.items()}}
