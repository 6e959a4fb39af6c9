"""The activator's own answers, in the OpenAI error shape the SDKs read (pure).

`{"error": {"message", "type", "code"}}`: 404 `unknown_service` (the path names
no ModelService), 503 `no_endpoints` (a service that does not hold, or whose
hold time ran out: with `Retry-After`), 429 `too_many_held` (the hold queue
is full: with `Retry-After`), 502 `endpoint_unreachable` (no Ready endpoint
took the request). Every answer of a request that was held carries
`X-Modelplane-Held-Seconds`, the time it waited (three decimals).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

Headers = tuple[tuple[bytes, bytes], ...]
JSON = b"application/json"
HELD_HEADER = b"x-modelplane-held-seconds"
RETRY_AFTER_EXPIRED_S = 30
"""After a hold ran out: the engine is still starting, come back in a while."""
RETRY_AFTER_FULL_S = 5
"""After a full queue: a slot frees as soon as the service wakes or a client gives up."""


def error_body(message: str, code: str, kind: str = "server_error") -> bytes:
    body = {"error": {"message": message, "type": kind, "code": code}}
    return json.dumps(body, separators=(",", ":")).encode()


def held_header(seconds: float) -> tuple[bytes, bytes]:
    return HELD_HEADER, f"{seconds:.3f}".encode()


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    body: bytes
    headers: Headers = ()


def unknown(namespace: str, name: str) -> Refusal:
    return Refusal(
        404,
        error_body(
            f"no ModelService {namespace}/{name}", "unknown_service", "invalid_request_error"
        ),
    )


def no_service(path: str) -> Refusal:
    return Refusal(
        404,
        error_body(
            f"the path {path!r} names no ModelService (/<namespace>/<name>/...)",
            "unknown_service",
            "invalid_request_error",
        ),
    )


def not_holding(namespace: str, name: str) -> Refusal:
    return Refusal(
        503,
        error_body(
            f"ModelService {namespace}/{name} has no Ready endpoint and does not hold requests "
            "(spec.scaleToZero is not set)",
            "no_endpoints",
        ),
    )


def expired(namespace: str, name: str, hold_s: float) -> Refusal:
    retry = (b"retry-after", str(RETRY_AFTER_EXPIRED_S).encode())
    return Refusal(
        503,
        error_body(
            f"ModelService {namespace}/{name} got no Ready endpoint within "
            f"spec.scaleToZero.holdTimeoutSeconds ({hold_s:g} s)",
            "no_endpoints",
        ),
        (retry,),
    )


def full(namespace: str, name: str, bound: int) -> Refusal:
    retry = (b"retry-after", str(RETRY_AFTER_FULL_S).encode())
    return Refusal(
        429,
        error_body(
            f"ModelService {namespace}/{name} already holds spec.scaleToZero.maxHeldRequests "
            f"({bound}) requests while it wakes up",
            "too_many_held",
            "rate_limit_error",
        ),
        (retry,),
    )
