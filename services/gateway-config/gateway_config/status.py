"""The status gateway-config writes, decided from what it observed (pure: no I/O, no clock).

- InferenceGateway `default`: `address`, the Gateway's first status address as
  `http://<host>` (plus `:<port>` when the listener port is not 80), and `Ready`
  (`GatewayReady`; `AddressPending` while the Gateway has no address,
  `GatewayNotProgrammed` when its controller refuses it). Any other
  InferenceGateway: `Ready` False, `NotDefault` (the gateway is a singleton).
- ModelService: `address` = `<gateway address>/<namespace>/<name>` once the
  gateway has one; `Ready` (`Routed`; `GatewayNotReady`, `NoEndpoints`) and
  `EndpointsSelected` (`AllSelectorsMatch`; `SelectorMatchesNothing`, naming
  each `spec.endpoints[i].selector` that matches no ModelEndpoint).
- ModelEndpoint: `Accepted` (`ValidURL`; `InvalidURL` naming `spec.url`).

Every status carries `observedGeneration`; conditions keep their
`lastTransitionTime` while their status holds (`modelplane.conditions.merge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelplane import conditions
from modelplane.conditions import condition
from modelplane.wellknown import Json

Obj = Mapping[str, Any]

DEFAULT_GATEWAY = "default"
READY = conditions.READY
ACCEPTED = "Accepted"
ENDPOINTS_SELECTED = "EndpointsSelected"

GATEWAY_READY = "GatewayReady"
ADDRESS_PENDING = "AddressPending"
GATEWAY_NOT_PROGRAMMED = "GatewayNotProgrammed"
NOT_DEFAULT = "NotDefault"
ROUTED = "Routed"
GATEWAY_NOT_READY = "GatewayNotReady"
NO_ENDPOINTS = "NoEndpoints"
ALL_SELECTORS_MATCH = "AllSelectorsMatch"
SELECTOR_MATCHES_NOTHING = "SelectorMatchesNothing"
VALID_URL = "ValidURL"
INVALID_URL = "InvalidURL"


def _generation(obj: Obj) -> int:
    return int(obj["metadata"].get("generation", 1))


def _status(obj: Obj, wanted: Sequence[dict[str, object]], **fields: Any) -> Json:
    previous = (obj.get("status") or {}).get("conditions") or []
    out: Json = {
        "observedGeneration": _generation(obj),
        "conditions": conditions.merge(previous, wanted),
    }
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def _condition_of(obj: Obj | None, type_: str) -> Obj:
    for entry in ((obj or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return {}


def gateway_address(gateway: Obj | None, port: int, scheme: str = "http") -> str | None:
    """`<scheme>://<host>[:port]` from the Gateway's first status address (the port left
    out when it is the scheme's own), or None."""
    for entry in ((gateway or {}).get("status") or {}).get("addresses") or []:
        host = str(entry.get("value") or "")
        if not host:
            continue
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        default = port == (443 if scheme == "https" else 80)
        return f"{scheme}://{host}" if default else f"{scheme}://{host}:{port}"
    return None


def inference_gateway(
    obj: Obj,
    gateway: Obj | None,
    gateway_ref: str,
    class_name: str,
    port: int,
    now: str,
    scheme: str = "http",
) -> Json:
    """The status of an InferenceGateway; `gateway` is the observed Gateway `gateway_ref`,
    serving clients with `scheme` on `port`."""
    name = obj["metadata"]["name"]
    what = f"InferenceGateway {name}"
    generation = _generation(obj)
    if name != DEFAULT_GATEWAY:
        ready = condition(
            READY,
            "False",
            NOT_DEFAULT,
            f"{what} metadata.name: the InferenceGateway is a singleton named "
            f"{DEFAULT_GATEWAY}; nothing is created for {name!r}, use InferenceGateway "
            f"{DEFAULT_GATEWAY} instead",
            generation,
            now,
        )
        return _status(obj, [ready])
    address = gateway_address(gateway, port, scheme)
    programmed = _condition_of(gateway, "Programmed")
    if programmed.get("status") == "False":
        ready = condition(
            READY,
            "False",
            GATEWAY_NOT_PROGRAMMED,
            f"{what}: Gateway {gateway_ref} is not programmed: "
            f"{programmed.get('reason', '')}: {programmed.get('message', '')}",
            generation,
            now,
        )
    elif address is None:
        ready = condition(
            READY,
            "False",
            ADDRESS_PENDING,
            f"{what}: Gateway {gateway_ref} has no address yet (is the controller of "
            f"GatewayClass {class_name} running?)",
            generation,
            now,
        )
    else:
        ready = condition(
            READY,
            "True",
            GATEWAY_READY,
            f"{what}: Gateway {gateway_ref} serves at {address}",
            generation,
            now,
        )
    return _status(obj, [ready], address=address)


def _selector(entry: Obj) -> str:
    labels = (entry.get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def model_service(
    obj: Obj,
    routed: Sequence[str],
    unrouted: Sequence[str],
    empty_entries: Sequence[int],
    gateway: str | None,
    now: str,
) -> Json:
    """The status of a ModelService routing to the ModelEndpoints named `routed`;
    `unrouted` are the messages of matched endpoints that cannot be routed, `empty_entries`
    the indexes of `spec.endpoints` entries that match nothing, `gateway` the gateway's
    address (None while it has none)."""
    meta = obj["metadata"]
    what = f"ModelService {meta['namespace']}/{meta['name']}"
    generation = _generation(obj)
    entries = (obj.get("spec") or {}).get("endpoints") or []
    empty = [
        f"spec.endpoints[{i}].selector ({_selector(entries[i])}) matches no ModelEndpoint "
        f"in namespace {meta['namespace']}"
        for i in empty_entries
    ]
    selected = condition(
        ENDPOINTS_SELECTED,
        "False" if empty else "True",
        SELECTOR_MATCHES_NOTHING if empty else ALL_SELECTORS_MATCH,
        f"{what} " + "; ".join(empty) if empty else f"{what}: every selector matches",
        generation,
        now,
    )
    skipped = "".join(f"; not routed: {m}" for m in unrouted)
    if gateway is None:
        ready = condition(
            READY,
            "False",
            GATEWAY_NOT_READY,
            f"{what}: InferenceGateway {DEFAULT_GATEWAY} has no address yet",
            generation,
            now,
        )
    elif not routed:
        why = "; ".join(empty) or "no matched ModelEndpoint has a valid spec.url"
        ready = condition(
            READY,
            "False",
            NO_ENDPOINTS,
            f"{what} has no endpoint to route to ({why}{skipped}); "
            "requests get 503 until one appears",
            generation,
            now,
        )
    else:
        ready = condition(
            READY,
            "True",
            ROUTED,
            f"{what} routes to {len(routed)} ModelEndpoint(s): {', '.join(routed)}{skipped}",
            generation,
            now,
        )
    address = None if gateway is None else f"{gateway}/{meta['namespace']}/{meta['name']}"
    return _status(obj, [ready, selected], address=address)


def model_endpoint(obj: Obj, problem: str | None, now: str) -> Json:
    """The status of a ModelEndpoint: `problem` is why its URL is not routed (None: it is)."""
    meta = obj["metadata"]
    generation = _generation(obj)
    if problem is None:
        accepted = condition(
            ACCEPTED,
            "True",
            VALID_URL,
            f"ModelEndpoint {meta['namespace']}/{meta['name']}: spec.url can be routed",
            generation,
            now,
        )
    else:
        accepted = condition(ACCEPTED, "False", INVALID_URL, problem, generation, now)
    return _status(obj, [accepted])
