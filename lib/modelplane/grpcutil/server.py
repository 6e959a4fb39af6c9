"""Builds, starts and stops a gRPC server the same way in every service.

``start_server(address, register, services)`` creates a thread-pool server, lets
``register`` add the service's servicers, adds the standard ``grpc.health.v1.Health``
service, binds ``address`` (port 0 picks a free one) and starts it.

Guarantees:
- health answers for ``""`` (the whole server) and for each name in ``services``;
  they are SERVING once the server has started (``serving=False`` defers that to
  ``set_serving``), and NOT_SERVING from the moment ``stop`` begins;
- ``stop(grace)`` rejects new calls, lets in-flight calls finish for up to
  ``grace`` seconds, then cancels the rest, and returns once the server is down;
- without TLS the server only binds loopback addresses, unless ``allow_insecure``;
- a bind failure raises ``OSError`` naming the address.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelplane.grpcutil.tls import TlsFiles, host_of, is_loopback, server_credentials

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
HEALTH_SERVICE = "grpc.health.v1.Health"


class InsecureAddressError(ValueError):
    """Plain transport was asked for on an address other machines can reach."""


@dataclass(slots=True)
class GrpcServer:
    """A started server: its bound address, health state, and how to stop it."""

    server: Any  # grpc.Server
    health: health.HealthServicer
    address: str
    port: int
    services: tuple[str, ...]
    _stopped: threading.Event = field(default_factory=threading.Event)

    def set_serving(self, serving: bool = True) -> None:
        """Marks the whole server and every named service SERVING (or NOT_SERVING)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.services):
            self.health.set(name, status)

    def stop(self, grace: float = 5.0) -> None:
        """Graceful stop: NOT_SERVING at once, in-flight calls get ``grace`` seconds."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        log.info("grpc server stopped", extra={"fields": {"address": self.address}})

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops (or ``timeout``); True when it has stopped."""
        timed_out = self.server.wait_for_termination(timeout)
        return not timed_out


def start_server(
    address: str,
    register: Callable[[Any], None],
    services: Sequence[str],
    *,
    tls: TlsFiles | None = None,
    allow_insecure: bool = False,
    max_workers: int = 8,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    interceptors: Sequence[Any] = (),
    serving: bool = True,
) -> GrpcServer:
    """Starts a server on ``address`` with ``register``'s servicers and the health service."""
    if tls is None and not allow_insecure and not is_loopback(address):
        raise InsecureAddressError(
            f"refusing plain (insecure) gRPC on {address}: give TLS files or a loopback address"
        )
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=list(interceptors),
        options=options,
    )
    register(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, server_credentials(tls))
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if not port:
        raise OSError(f"cannot listen on {address}")
    server.start()
    host = host_of(address)
    bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    running = GrpcServer(server, health_servicer, bound, port, tuple(services))
    if serving:
        running.set_serving(True)
    log.info(
        "grpc server listening",
        extra={"fields": {"address": bound, "tls": tls is not None, "services": list(services)}},
    )
    return running
