"""Builders of the objects gateway-config reads, for its tests (plain dicts, as the API serves them).

Shared by the unit tests in services/gateway-config/tests, which used to write their own
copies: `model_service` (ModelService "chat" in namespace "ml" unless told), its
`spec.endpoints` entries `entry` (the endpoints labelled `d=<deployment>`) and `selecting`
(any labels), `model_endpoint`, `inference_gateway` ("default") and `gateway` (the Gateway
the front door runs on, "modelplane-gateway"). Each call returns a fresh object: `uid` is
`uid-<name>` unless given, a ModelService and an InferenceGateway have generation 1 unless
told otherwise; `apiVersion`, `status`, a ModelEndpoint's `generation` and `rewritePath`
are there only where a parameter asks for them, so each test states what its objects carry
(and the objects each test built before keep their exact fields).
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
API_VERSION = "modelplane.ai/v1alpha1"


def selecting(labels: dict[str, str], **fields: int) -> Json:
    """A `spec.endpoints` entry of a ModelService: the ModelEndpoints with `labels`, and
    `fields` such as `weight`, `priority` or `maxInFlight`."""
    return {"selector": {"matchLabels": labels}, **fields}


def entry(deployment: str, **fields: int) -> Json:
    """A `spec.endpoints` entry selecting the ModelEndpoints labelled `d=<deployment>`."""
    return selecting({"d": deployment}, **fields)


def model_service(
    *entries: Json,
    name: str = "chat",
    namespace: str = "ml",
    uid: str | None = None,
    generation: int = 1,
    api_version: bool = False,
    status: Json | None = None,
) -> Json:
    """A ModelService with `entries` as its `spec.endpoints`; `status` only where given."""
    uid = uid or f"uid-{name}"
    meta = {"name": name, "namespace": namespace, "uid": uid, "generation": generation}
    found: Json = {"kind": "ModelService", "metadata": meta, "spec": {"endpoints": list(entries)}}
    if status is not None:
        found["status"] = status
    return _versioned(found) if api_version else found


def model_endpoint(
    name: str,
    url: str,
    deployment: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    rewrite: str | None = None,
    namespace: str = "ml",
    uid: str | None = None,
    generation: int | None = None,
    api_version: bool = False,
) -> Json:
    """A ModelEndpoint at `url` labelled `d=<deployment>` (where given) and `labels`;
    `rewrite` is its `spec.rewritePath` (None: none), `generation` is there where given."""
    meta: Json = {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}"}
    if generation is not None:
        meta["generation"] = generation
    meta["labels"] = {**({} if deployment is None else {"d": deployment}), **(labels or {})}
    spec = {"url": url} if rewrite is None else {"url": url, "rewritePath": rewrite}
    found = {"kind": "ModelEndpoint", "metadata": meta, "spec": spec}
    return _versioned(found) if api_version else found


def inference_gateway(
    *,
    name: str = "default",
    uid: str | None = None,
    generation: int | None = 1,
    api_keys: Json | None = None,
    api_version: bool = False,
    status: Json | None = None,
    **spec: Any,
) -> Json:
    """An InferenceGateway with the Traefik backend and `spec` (`tls=...`, say), then
    `apiKeys` where `api_keys` is given; `generation` and `status` where given."""
    meta: Json = {"name": name, "uid": uid or f"uid-{name}"}
    if generation is not None:
        meta["generation"] = generation
    full: Json = {"backend": "Traefik", **spec}
    if api_keys is not None:
        full["apiKeys"] = api_keys
    found: Json = {"kind": "InferenceGateway", "metadata": meta, "spec": full}
    if status is not None:
        found["status"] = status
    return _versioned(found) if api_version else found


def gateway(
    *addresses: str,
    namespace: str | None = "modelplane-system",
    conditions: list[Json] | None = None,
) -> Json:
    """The front door's Gateway, "modelplane-gateway", with `addresses` (IPs) and
    `conditions` in its status (none where not given); no namespace where it is None."""
    meta = {"name": "modelplane-gateway"}
    if namespace is not None:
        meta["namespace"] = namespace
    status: Json = {"addresses": [{"type": "IPAddress", "value": a} for a in addresses]}
    if conditions is not None:
        status["conditions"] = conditions
    return {"kind": "Gateway", "metadata": meta, "status": status}


def _versioned(obj: Json) -> Json:
    """`obj` with `apiVersion` first, as a GET of one object returns it."""
    return {"apiVersion": API_VERSION, **obj}
