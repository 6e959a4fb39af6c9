"""The Kubernetes objects gateway-config writes, built from their owners (pure).

- `gateway_class` and `gateway`: the front door. The Gateway has one HTTP
  listener accepting routes from every namespace and is owned by the
  InferenceGateway `default`.
- Per ModelService `<ns>/<name>`: `route`, the HTTPRoute `<ns>/<name>` with one
  rule matching `PathPrefix /<ns>/<name>/` and one backendRef (weight 1) per
  backend, each with its own URLRewrite (`ReplacePrefixMatch` with the
  endpoint's `rewritePath`, plus the Host header for named hosts); no request
  timeout, so streams are never cut by the route. Each backend is a
  selectorless headless Service plus an EndpointSlice (`backend_objects`); a
  service with no backend keeps one backendRef to a Service whose EndpointSlice
  lists no endpoint, which Traefik answers with a prompt 503 (a Service without
  any EndpointSlice would be a 500, a route without backendRefs a 500 too).
  An `https` backend named by host also gets a BackendTLSPolicy (same name),
  so the gateway speaks TLS to it with that host as SNI and verifies the
  certificate against that host and the system's CAs, or, given a CA bundle,
  against a ConfigMap of that bundle (same name, key `ca.crt`) only.

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

from modelplane.naming import shorten
from modelplane.wellknown import API_VERSION, MANAGED_BY, Json

from gateway_config.backends import Backend

Obj = Mapping[str, Any]

GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"
CONTROLLER_NAME = "traefik.io/gateway-controller"
GATEWAY_NAME = "modelplane-gateway"
LISTENER = "http"
MANAGER = "modelplane-gateway-config"
SERVICE_LABEL = "modelplane.ai/model-service"
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


def gateway(inference_gateway: Obj, namespace: str, class_name: str, port: int) -> Json:
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": _metadata(GATEWAY_NAME, namespace, inference_gateway),
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [
                {
                    "name": LISTENER,
                    "protocol": "HTTP",
                    "port": port,
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    }


def _labels(service: Obj, endpoint: str | None) -> dict[str, str]:
    labels = {SERVICE_LABEL: _label_value(service["metadata"]["name"])}
    if endpoint is not None:
        labels[ENDPOINT_LABEL] = _label_value(endpoint)
    return labels


def _service(
    service: Obj, name: str, port: int, scheme: str, protocol: str, endpoint: str | None
) -> Json:
    meta = service["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, meta["namespace"], service, **_labels(service, endpoint)),
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
    service: Obj, name: str, port: int, scheme: str, protocol: str, backend: Backend | None
) -> Json:
    meta = service["metadata"]
    labels = {
        **_labels(service, None if backend is None else backend.name),
        SERVICE_NAME_LABEL: name,
        SLICE_MANAGED_BY: SLICE_MANAGER,
    }
    endpoints = (
        [] if backend is None else [{"addresses": [backend.host], "conditions": {"ready": True}}]
    )
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _metadata(name, meta["namespace"], service, **labels),
        "addressType": "IPv4" if backend is None else backend.address_type,
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
    service: Obj, backend: Backend | None, ca_bundle: str | None = None
) -> list[Json]:
    """The Service and EndpointSlice of one backend (None: the empty stand-in), plus, for an
    https backend named by host, its BackendTLSPolicy trusting the system's CAs or, given
    `ca_bundle` (PEM), the ConfigMap of that bundle alone."""
    endpoint = None if backend is None else backend.name
    name = backend_name(service["metadata"]["name"], endpoint)
    port = 80 if backend is None else backend.port
    scheme = "http" if backend is None else backend.scheme
    protocol = "http" if backend is None else backend.app_protocol
    objects = [
        _service(service, name, port, scheme, protocol, endpoint),
        _slice(service, name, port, scheme, protocol, backend),
    ]
    return objects if backend is None else objects + _tls(service, name, backend, ca_bundle)


def _backend_ref(service: Obj, backend: Backend | None) -> Json:
    endpoint = None if backend is None else backend.name
    ref: Json = {
        "group": "",
        "kind": "Service",
        "name": backend_name(service["metadata"]["name"], endpoint),
        "port": 80 if backend is None else backend.port,
        "weight": 1,
    }
    if backend is not None:
        rewrite: Json = {
            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": backend.rewrite_path}
        }
        if backend.address_type == "FQDN":
            rewrite = {"hostname": backend.host, **rewrite}
        ref["filters"] = [{"type": "URLRewrite", "urlRewrite": rewrite}]
    return ref


def path_prefix(service: Obj) -> str:
    meta = service["metadata"]
    return f"/{meta['namespace']}/{meta['name']}/"


def route(service: Obj, backends: Sequence[Backend], gateway_namespace: str) -> Json:
    """The HTTPRoute of a ModelService over `backends` (none: the 503 stand-in)."""
    meta = service["metadata"]
    refs = [_backend_ref(service, b) for b in backends] or [_backend_ref(service, None)]
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": _metadata(
            meta["name"], meta["namespace"], service, **{SERVICE_LABEL: _label_value(meta["name"])}
        ),
        "spec": {
            "parentRefs": [
                {
                    "group": GATEWAY_GROUP,
                    "kind": "Gateway",
                    "name": GATEWAY_NAME,
                    "namespace": gateway_namespace,
                    "sectionName": LISTENER,
                }
            ],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": path_prefix(service)}}],
                    "backendRefs": refs,
                }
            ],
        },
    }
