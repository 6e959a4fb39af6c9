"""Where a ModelService at zero sends its requests: the activator (pure).

A ModelService with `spec.scaleToZero` whose every endpoint is gone (no
matched endpoint is routed: its deployments scaled to zero) is routed, when
gateway-config runs with `--activator-url`, to the activator instead of the
empty 503 stand-in: its route has one backendRef, the activator, reached like
any plain-HTTP backend through the h2c hop (`gateway_config.hop`, so a stream
the activator relays is never cut by golang/go#40747), without the retry
filter (a held request past its hold time is answered 503, which must reach
the client rather than be held again ten times). The path keeps the service's
own prefix `/<namespace>/<name>/`, from which the activator knows the service.
As soon as one endpoint is routed the route goes straight to the endpoints
again: no added hop while endpoints exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.endpoints import parse_url, service_prefix
from modelplane.wellknown import Json

from gateway_config import render
from gateway_config.backends import Backend
from gateway_config.hop import Hop

Obj = Mapping[str, Any]
NAME = "modelplane-activator"
"""The activator's name as a backend (its Service `mp-<service>-modelplane-activator-<hash>`);
never routed together with a ModelEndpoint, so a ModelEndpoint of that name cannot clash."""


def holds(service: Obj) -> bool:
    """Whether the service asks for its requests to be held at zero (`spec.scaleToZero`)."""
    return isinstance((service.get("spec") or {}).get("scaleToZero"), Mapping)


def check_url(url: str) -> str | None:
    """Why `url` cannot be the activator's (`--activator-url`), or None when it can."""
    parsed = parse_url(url)
    return parsed if isinstance(parsed, str) else None


def backend(service: Obj, activator_url: str | None, routed: int) -> Backend | None:
    """The activator as the one backend of `service`, or None: routed to its endpoints
    (`routed` of them), not holding, or no activator configured (a usable URL, see
    `check_url`)."""
    if activator_url is None or routed or not holds(service):
        return None
    parsed = parse_url(activator_url)
    if isinstance(parsed, str):
        return None
    scheme, host, port, address_type = parsed
    meta = service["metadata"]
    return Backend(
        name=NAME,
        scheme="https" if scheme == "https" else "http",
        host=host,
        port=port,
        address_type=address_type,
        rewrite_path=service_prefix(meta["namespace"], meta["name"]),
        app_protocol=scheme,
    )


def objects(
    service: Obj, activator: Backend, gateway_namespace: str, via: Hop, listener: str
) -> list[Json]:
    """The service's objects while the activator holds its requests: the activator's Service
    and EndpointSlice, its hop (Service, EndpointSlice, the hop listener's route) and the
    service's route to it, without retries."""
    return [
        *render.backend_objects(service, activator, None, via),
        render.hop_route(service, activator, gateway_namespace),
        render.route(
            service, [activator], gateway_namespace, via, retries=False, listener=listener
        ),
    ]
