"""Every service's operational HTTP endpoints: `/metrics`, `/healthz` and `/readyz`.

`/metrics` is the Prometheus text exposition of the process's registry (or of the
`registry` given, as the P/D router's supervisor gives its workers' collector);
`/healthz` answers 200 while the event loop runs; `/readyz` answers 200 when
the service's `ready()` says so (for example: connected and its watches
synced), 503 with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

Readiness = Callable[[], str | None]
"""None when ready, else why not."""


def _response(code: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def answer(path: str, readiness: Readiness, registry: CollectorRegistry = REGISTRY) -> bytes:
    if path == "/metrics":
        return _response("200 OK", generate_latest(registry), CONTENT_TYPE_LATEST)
    if path == "/healthz":
        return _response("200 OK", b"ok")
    if path == "/readyz":
        reason = readiness()
        if reason is None:
            return _response("200 OK", b"ok")
        return _response("503 Service Unavailable", reason.encode())
    return _response("404 Not Found", b"not found")


async def serve(
    host: str, port: int, readiness: Readiness, registry: CollectorRegistry = REGISTRY
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            request = (await reader.readline()).decode(errors="replace").split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = request[1].split("?", 1)[0] if len(request) > 1 else "/"
            writer.write(answer(path, readiness, registry))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, port)
    async with server:
        await server.serve_forever()
