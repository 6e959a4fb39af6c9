"""The router's HTTP/1.1 server: h11 framing over asyncio streams, a handler per request.

The server reads one request (head and whole body, kept as the chunks that
arrived) and runs `handler(request, reply)`; the handler answers through
`reply` (`start`, `send`, `finish`), streaming as it goes. While the handler
runs, the server keeps reading the client's socket: when the client closes it,
the handler's task is cancelled at once, so whatever it holds upstream is
closed with it (that is how a client disconnect cancels the engines' work).

Guarantees: connections are kept alive between requests; a handler that fails
before it started its answer gets a 502 (`UpstreamError`-like failures are the
handler's to turn into better answers); a handler that fails mid-answer has its
connection closed, so the client sees a truncated body, never a wrong one;
requests with bad framing get 400 and the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import h11

log = logging.getLogger("pd_router.server")
READ_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024
KEEPALIVE_S = 120.0
COALESCE = 64 * 1024
"""Data up to this size goes out in one write with the head before it (fewer syscalls)."""
ROUTER_ERROR = b'{"error":{"message":"router error","type":"router_error","code":502}}'


@dataclass(slots=True)
class Request:
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    """As received, names lower-cased."""
    body: list[bytes]
    """The chunks as they arrived (not joined)."""

    @property
    def path(self) -> str:
        return self.target.partition(b"?")[0].decode("latin-1")

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Reply:
    """The answer to one request, written as it is produced."""

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
        self._conn = conn
        self._writer = writer
        self._held = b""  # the head, sent with the first chunk: one packet, not two
        self.started = False
        self.status = 0

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        self.status = status
        self._held = self._conn.send(h11.Response(status_code=status, headers=headers)) or b""

    def _write(self, data: bytes) -> None:
        held, self._held = self._held, b""
        if held and len(data) <= COALESCE:
            self._writer.write(held + data)
            return
        if held:
            self._writer.write(held)
        self._writer.write(data)

    async def send(self, chunk: bytes) -> None:
        if chunk:
            self._write(self._conn.send(h11.Data(data=chunk)) or b"")
            await self._writer.drain()

    async def finish(self) -> None:
        self._write(self._conn.send(h11.EndOfMessage()) or b"")
        await self._writer.drain()

    async def whole(
        self,
        status: int,
        body: bytes,
        content_type: bytes,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """A complete small answer in one write."""
        self.started = True
        self.status = status
        head = h11.Response(
            status_code=status,
            headers=[
                *headers,
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        )
        out = self._conn.send(head) or b""
        out += self._conn.send(h11.Data(data=body)) or b"" if body else b""
        out += self._conn.send(h11.EndOfMessage()) or b""
        self._writer.write(out)
        await self._writer.drain()


Handler = Callable[[Request, Reply], Coroutine[Any, Any, None]]


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._connection, host, port, reuse_address=True, backlog=2048
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.sleep(0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._writers.add(writer)
        try:
            while True:
                request = await _read(conn, reader)
                if request is None:
                    break
                if not await self._serve(conn, reader, writer, request):
                    break
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as error:
            await _refuse(conn, writer, error)
        except (ConnectionError, TimeoutError, h11.LocalProtocolError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: Request,
    ) -> bool:
        """Run the handler while watching for the client going away; False to close."""
        reply = Reply(conn, writer)
        work = asyncio.create_task(self.handler(request, reply))
        watch = asyncio.create_task(reader.read(READ_SIZE))
        done, _ = await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
        if watch in done and work not in done:
            data = watch.result() if not watch.cancelled() and watch.exception() is None else b""
            if not data:  # the client is gone: stop the work (and its upstream requests)
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                return False
            conn.receive_data(data)  # a pipelined next request: kept for later
            await asyncio.wait((work,))
        elif not watch.done():
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        elif watch.exception() is None:
            conn.receive_data(watch.result())
        error = work.exception() if not work.cancelled() else None
        if error is None:
            return True
        if reply.started:
            log.warning("answer cut short", extra={"fields": {"error": repr(error)}})
            return False
        log.error("handler failed", extra={"fields": {"error": repr(error)}})
        await reply.whole(
            502, b'{"error":{"message":"router error","code":502}}', b"application/json"
        )
        return True


async def _read(conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
    """The next request, or None when the client closed (or idled out) between requests."""
    head: h11.Request | None = None
    body: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                return None
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body.append(event.data)
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            return Request(head.method, head.target, list(head.headers), body)
        else:  # ConnectionClosed, PAUSED
            return None


async def _refuse(
    conn: h11.Connection, writer: asyncio.StreamWriter, error: h11.ProtocolError
) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    reply = Reply(conn, writer)
    with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
        await reply.whole(
            error.error_status_hint,
            f"bad request: {error}\n".encode(),
            b"text/plain; charset=utf-8",
            [(b"connection", b"close")],
        )
