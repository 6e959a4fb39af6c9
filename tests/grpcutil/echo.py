"""A tiny raw-bytes gRPC service for testing the shared plumbing without any .proto.

``Echo`` answers ``/test.Echo/Call`` with the request bytes, after failing the first
``failures`` calls with ``code`` and sleeping ``delay_s`` on each call. It counts calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

SERVICE = "test.Echo"
METHOD = f"/{SERVICE}/Call"


class Echo:
    def __init__(
        self, *, failures: int = 0, code: Any = grpc.StatusCode.UNAVAILABLE, delay_s: float = 0.0
    ) -> None:
        self.failures = failures
        self.code = code
        self.delay_s = delay_s
        self.calls = 0
        self._lock = threading.Lock()

    def call(self, request: bytes, context: Any) -> bytes:
        with self._lock:
            self.calls += 1
            attempt = self.calls
        if self.delay_s:
            time.sleep(self.delay_s)
        if attempt <= self.failures:
            context.abort(self.code, f"failing attempt {attempt} on purpose")
        return request

    def register(self) -> Callable[[Any], None]:
        def add(server: Any) -> None:
            handler = grpc.method_handlers_generic_handler(
                SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(self.call)}
            )
            server.add_generic_rpc_handlers((handler,))

        return add


def call(channel: Any, payload: bytes = b"ping", timeout: float | None = None) -> bytes:
    """One raw call to ``/test.Echo/Call``."""
    result: bytes = channel.unary_unary(METHOD)(payload, timeout=timeout)
    return result
