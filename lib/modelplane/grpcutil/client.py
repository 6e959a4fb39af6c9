"""Dials a modelplane gRPC service with a default deadline and retries for transient failures.

``dial(target, services=[...])`` returns a ``grpc.Channel`` (``dial_aio`` a
``grpc.aio`` one) whose service config gives
every method of those services:
- a default deadline (``deadline_s``): a call made without ``timeout=`` still ends, with
  DEADLINE_EXCEEDED; a call's own ``timeout`` wins when shorter;
- a retry policy (``RetryPolicy``): a call that fails with one of its codes before any
  response arrived is tried again with exponential backoff, within the same deadline.

Retry only what is safe to repeat: UNAVAILABLE (the server never ran the call) suits
every method; ``READ_RETRY_CODES`` adds DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED,
for idempotent reads only.

Guarantees: the config is plain JSON built here (``service_config``), DNS-provided
configs are ignored, and plain transport is refused for non-loopback targets unless
``allow_insecure``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from modelplane.grpcutil.tls import TlsFiles, channel_credentials, is_loopback

DEFAULT_DEADLINE_S = 10.0
WRITE_RETRY_CODES = ("UNAVAILABLE",)
READ_RETRY_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")
MAX_ATTEMPTS_CAP = 5  # gRPC ignores more


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """gRPC's retryPolicy: attempts include the first; backoff grows by ``multiplier``."""

    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    codes: tuple[str, ...] = WRITE_RETRY_CODES

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= MAX_ATTEMPTS_CAP:
            raise ValueError(f"max_attempts must be 2..{MAX_ATTEMPTS_CAP}, not {self.max_attempts}")
        if self.initial_backoff_s <= 0 or self.max_backoff_s <= 0 or self.multiplier <= 0:
            raise ValueError("backoffs and multiplier must be positive")
        unknown = [c for c in self.codes if c not in grpc.StatusCode.__members__]
        if not self.codes or unknown:
            raise ValueError(f"retry codes must be gRPC status code names, got {self.codes}")

    def to_json(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": _duration(self.initial_backoff_s),
            "maxBackoff": _duration(self.max_backoff_s),
            "backoffMultiplier": self.multiplier,
            "retryableStatusCodes": list(self.codes),
        }


DEFAULT_RETRY = RetryPolicy()
"""Up to 4 attempts on UNAVAILABLE, backoff 0.1s doubling to 2s."""


def _duration(seconds: float) -> str:
    """A protobuf JSON Duration ("0.25s")."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def service_config(
    services: Sequence[str],
    *,
    deadline_s: float | None = DEFAULT_DEADLINE_S,
    retry: RetryPolicy | None = DEFAULT_RETRY,
) -> str:
    """The service-config JSON for ``services`` (full names; empty means every method)."""
    method: dict[str, Any] = {"name": [{"service": s} for s in services] or [{}]}
    if deadline_s is not None:
        method["timeout"] = _duration(deadline_s)
    if retry is not None:
        method["retryPolicy"] = retry.to_json()
    return json.dumps({"methodConfig": [method]}, sort_keys=True)


def _channel_options(
    services: Sequence[str],
    deadline_s: float | None,
    retry: RetryPolicy | None,
    options: Sequence[tuple[str, Any]],
) -> list[tuple[str, Any]]:
    return [
        ("grpc.service_config", service_config(services, deadline_s=deadline_s, retry=retry)),
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.enable_retries", 1 if retry is not None else 0),
        *options,
    ]


def _refuse_plain(target: str, allow_insecure: bool) -> None:
    if not allow_insecure and not is_loopback(target):
        raise ValueError(
            f"refusing plain (insecure) gRPC to {target}: give TLS files or a loopback address"
        )


def dial(
    target: str,
    *,
    services: Sequence[str] = (),
    deadline_s: float | None = DEFAULT_DEADLINE_S,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    tls: TlsFiles | None = None,
    allow_insecure: bool = False,
    options: Sequence[tuple[str, Any]] = (),
) -> Any:
    """A channel to ``target`` (host:port) with the default deadline and retry policy."""
    all_options = _channel_options(services, deadline_s, retry, options)
    if tls is not None:
        return grpc.secure_channel(target, channel_credentials(tls), options=all_options)
    _refuse_plain(target, allow_insecure)
    return grpc.insecure_channel(target, options=all_options)


def dial_aio(
    target: str,
    *,
    services: Sequence[str] = (),
    deadline_s: float | None = DEFAULT_DEADLINE_S,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    tls: TlsFiles | None = None,
    allow_insecure: bool = False,
    options: Sequence[tuple[str, Any]] = (),
) -> Any:
    """``dial`` for asyncio callers: a ``grpc.aio`` channel with the same guarantees."""
    all_options = _channel_options(services, deadline_s, retry, options)
    if tls is not None:
        return grpc.aio.secure_channel(target, channel_credentials(tls), options=all_options)
    _refuse_plain(target, allow_insecure)
    return grpc.aio.insecure_channel(target, options=all_options)
