"""A small HTTP/1.1 server: asyncio streams for I/O, h11 for framing (the engine
simulator's and the scheduler extender's).

Guarantees: connections are kept alive between requests (closed after
`keepalive_s` idle, longer than a Traefik gateway keeps idle backend
connections: 4 s in the local fleet, 90 s by default; so the gateway always
closes first); a response without a body
length (`Response.stream`) goes out with chunked transfer encoding (or
close-delimited for an HTTP/1.0 client), each chunk flushed as it is produced;
every response, the server's own errors (400 bad framing, 413 too large, 500 a
handler that raised) included, carries `default_headers`; a handler whose
client closes the connection before the answer is cancelled, and a stream whose
client went away is closed (`aclose`), so the work stops either way;
`shutdown` stops accepting, closes idle connections, lets requests in flight
finish within a grace period, marks their responses `Connection: close`, then
closes whatever is left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11

log = logging.getLogger("modelplane.httpserver")


if TYPE_CHECKING:
    import ssl

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
READ_SIZE = 64 * 1024
REASONS = {
    100: b"Continue", 200: b"OK", 400: b"Bad Request", 404: b"Not Found",
    405: b"Method Not Allowed", 408: b"Request Timeout", 413: b"Content Too Large",
    500: b"Internal Server Error", 503: b"Service Unavailable",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Lower-cased names; a repeated header's values joined with `, `."""
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncGenerator[bytes, None] | None = None


Handler = Callable[[Request], Awaitable[Response]]


def json_response(status: int, value: object, headers: Sequence[tuple[str, str]] = ()) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, "application/json", list(headers))


def text_response(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8")


class _HungUpError(Exception):
    pass


class _RefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpServer:
    def __init__(
        self,
        handler: Handler,
        default_headers: Sequence[tuple[str, str]] = (),
        keepalive_s: float = 120.0,
        log_error: Callable[[str, dict[str, object]], None] | None = None,
    ) -> None:
        """`log_error(event, fields)` reports connection and handler errors (default: the
        `modelplane.httpserver` logger)."""
        self.handler = handler
        self.log_error = log_error or (lambda event, fields: log.warning("%s %s", event, fields))
        self.default_headers = [(k.encode(), v.encode()) for k, v in default_headers]
        self.keepalive_s = keepalive_s
        self.closing = False
        self._server: asyncio.Server | None = None
        self._busy: dict[asyncio.StreamWriter, bool] = {}

    @property
    def in_flight(self) -> int:
        return sum(self._busy.values())

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen (HTTPS with `tls`); returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._connection, host, port, reuse_address=True, backlog=1024, ssl=tls
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def shutdown(self, grace_s: float) -> None:
        self.closing = True
        if self._server is not None:
            self._server.close()
        for writer, busy in list(self._busy.items()):
            if not busy:
                writer.close()
        deadline = time.monotonic() + grace_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for writer in list(self._busy):
            writer.close()
        await asyncio.sleep(0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._busy[writer] = False
        try:
            while not self.closing:
                try:
                    request = await self._read(conn, reader, writer)
                except _RefusedError as refused:
                    await self._refuse(conn, writer, refused)
                    break
                if request is None:
                    break
                self._busy[writer] = True
                try:
                    await self._respond(conn, reader, writer, request)
                finally:
                    self._busy[writer] = False
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (ConnectionError, TimeoutError, h11.LocalProtocolError):
            pass
        except Exception as error:  # a stream that failed after its head went out
            self.log_error("connection_error", {"error": repr(error)})
        finally:
            self._busy.pop(writer, None)
            writer.close()

    async def _read(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        """The next request, or None when the client closed (or idled out) between requests."""
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                raise _RefusedError(error.error_status_hint, f"bad request: {error}") from None
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    writer.write(
                        conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                    )
                try:
                    async with asyncio.timeout(self.keepalive_s):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    if head is None:
                        return None
                    raise _RefusedError(408, "request body timed out") from None
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
                length = dict(event.headers).get(b"content-length")
                if length is not None and int(length) > MAX_BODY:
                    raise _RefusedError(413, f"request body over {MAX_BODY} bytes")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise _RefusedError(413, f"request body over {MAX_BODY} bytes")
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                return _request(head, bytes(body))
            else:  # ConnectionClosed, PAUSED
                return None

    async def _respond(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: Request,
    ) -> None:
        try:
            response = await self._unless_hung_up(conn, reader, request)
        except _HungUpError:
            raise ConnectionResetError("client went away before its answer") from None
        except Exception as error:
            self.log_error(
                "handler_error",
                {"method": request.method, "path": request.path, "error": repr(error)},
            )
            response = json_response(500, {"error": {"message": "internal error", "code": 500}})
        head = self._head(response)
        if response.stream is None:
            out = conn.send(head) or b""
            if response.body and request.method != "HEAD":
                out += conn.send(h11.Data(data=response.body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
            writer.write(out)
            await writer.drain()
            return
        stream = response.stream
        try:
            writer.write(conn.send(head) or b"")
            async for chunk in stream:
                if chunk:
                    writer.write(conn.send(h11.Data(data=chunk)) or b"")
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
        finally:
            await stream.aclose()

    async def _unless_hung_up(
        self, conn: h11.Connection, reader: asyncio.StreamReader, request: Request
    ) -> Response:
        """The handler's response; its task is cancelled if the client closes meanwhile
        (as vLLM aborts a request whose client left), raising `_HungUpError`."""
        answering = asyncio.ensure_future(self.handler(request))
        listening = asyncio.ensure_future(reader.read(READ_SIZE))
        await asyncio.wait((answering, listening), return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
        elif not listening.exception() and listening.result():
            conn.receive_data(listening.result())  # the next request, pipelined: kept
        elif not answering.done():
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
            raise _HungUpError
        return await answering

    def _head(self, response: Response) -> h11.Response:
        headers = list(self.default_headers)
        headers += [(k.encode(), v.encode()) for k, v in response.headers]
        if response.content_type:
            headers.append((b"content-type", response.content_type.encode()))
        if response.stream is None:
            headers.append((b"content-length", str(len(response.body)).encode()))
        if self.closing:
            headers.append((b"connection", b"close"))
        return h11.Response(
            status_code=response.status,
            headers=headers,
            reason=REASONS.get(response.status, b""),
        )

    async def _refuse(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, refused: _RefusedError
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        response = text_response(refused.status, refused.message + "\n")
        response.headers.append(("connection", "close"))
        try:
            out = conn.send(self._head(response)) or b""
            out += conn.send(h11.Data(data=response.body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return
        writer.write(out)
        await writer.drain()


def _request(head: h11.Request, body: bytes) -> Request:
    headers: dict[str, str] = {}
    for name, value in head.headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    target = head.target.decode("latin-1")
    path, _, query = target.partition("?")
    return Request(head.method.decode("ascii"), path, query, headers, body)
