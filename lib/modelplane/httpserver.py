"""A small HTTP/1.1 server: asyncio streams for I/O, `modelplane.http1` (httptools, a C
parser) for framing; the engine simulator's, the scheduler extender's, the activator's,
gateway-config's key server's and the P/D router's.

A handler answers in one of two ways: `HttpServer(handler)` takes a coroutine
that returns a `Response` (a whole body, or `Response.stream`, an async
generator of chunks); `HttpServer(replier=...)` takes a coroutine that answers
through a `Reply` as it goes (`start`, `send`, `finish`, or `whole`), as a proxy
relays an upstream answer. Either way the request arrives read to its end: the
body kept as the chunks that arrived (`Request.chunks`, joined only when
`Request.body` is read, and not at all when it came in one chunk), the headers as
received with lower-cased names (`Request.raw_headers`; `Request.headers`, a joined
str dict, is built on first use). Pipelined requests are answered in order; a client
sending `Expect: 100-continue` gets `100 Continue` before its body is read.

Guarantees: connections are kept alive between requests (closed after
`keepalive_s` idle, longer than a Traefik gateway keeps idle backend
connections: 4 s in the local fleet, 90 s by default; so the gateway always
closes first); an answer without a body length goes out with chunked transfer
encoding (or close-delimited for an HTTP/1.0 client), each chunk written as it
is produced, the head held back and written with the first chunk when that is
small (one packet, not two); every response, the server's own errors (400 bad
framing, 431 a head over 64 KiB, 408 a body that stalled, 413 a body over
`max_body`, `error_status` a handler that raised before answering) included,
carries `default_headers`; after a refusal the server reads and drops what the
client still sends (up to 2 s) before closing, so the client gets to read it;
while a handler runs, the server keeps reading its client's socket, and when the
client closes it the handler's task is cancelled at once (its `finally` blocks
close whatever it holds upstream; a `Response.stream` is closed with `aclose`);
a handler that fails after its answer started has its connection closed, so the
client sees a cut-short body, never a wrong one.

Graceful shutdown (`shutdown(grace_s)`, what a service calls on SIGTERM): the
listener closes at once (a new connection is refused), idle kept-alive
connections are closed, and every request in flight, one still arriving (its
first bytes read) included, gets up to `grace_s` to be answered to its end,
streams included; those answers carry `Connection: close` and their connections
close after them. Whatever is still running at the deadline is cut (its handler
cancelled by the closed connection). `shutdown` returns once nothing is in flight
or the deadline passed, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelplane import http1

log = logging.getLogger("modelplane.httpserver")


if TYPE_CHECKING:
    import ssl

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
"""The default cap on a request body (`HttpServer(max_body=...)`)."""
READ_SIZE = 256 * 1024
COALESCE = 64 * 1024
"""A first chunk up to this size goes out in one write with the response head."""
LINGER_S = 2.0
CHUNKED = (b"transfer-encoding", b"chunked")

Headers = Sequence[tuple[bytes, bytes]]


class Request:
    """One request read to its end."""

    __slots__ = ("_body", "_headers", "chunks", "method", "path", "query", "raw_headers", "target")

    def __init__(
        self, method: str, target: bytes, raw_headers: Headers, chunks: list[bytes]
    ) -> None:
        self.method = method
        self.target = target
        """As received: path and query, undecoded."""
        path, _, query = target.decode("latin-1").partition("?")
        self.path = path
        self.query = query
        self.raw_headers = raw_headers
        """As received, names lower-cased, repeats kept."""
        self.chunks = chunks
        """The body as the chunks that arrived, not joined."""
        self._headers: dict[str, str] | None = None
        self._body: bytes | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        """Lower-cased names; a repeated header's values joined with `, `."""
        if self._headers is None:
            self._headers = {}
            for name, value in self.raw_headers:
                key, text = name.decode("latin-1"), value.decode("latin-1")
                known = self._headers.get(key)
                self._headers[key] = text if known is None else f"{known}, {text}"
        return self._headers

    def header(self, name: bytes) -> bytes | None:
        """The first value of the header `name` (lower-case), undecoded."""
        for key, value in self.raw_headers:
            if key == name:
                return value
        return None

    @property
    def body(self) -> bytes:
        """The whole body: the one chunk itself, or the chunks joined once (one copy)."""
        if self._body is None:
            self._body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        return self._body


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncGenerator[bytes, None] | None = None


def json_response(status: int, value: object, headers: Sequence[tuple[str, str]] = ()) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, "application/json", list(headers))


def text_response(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8")


class Reply:
    """The answer to one request, written as it is produced: `start` then `send`s then
    `finish`, or `whole` at once. A HEAD request's answer goes out without its body.

    The framing follows the headers: a `content-length` among them fixes the body's
    length (a body that turns out longer or shorter raises `RuntimeError`: the
    connection is then closed, never reused); without one the body goes chunked (to an
    HTTP/1.0 client: close-delimited). `closes` tells whether the connection ends with
    this answer (the client asked, an HTTP/1.0 client, or the server is draining)."""

    __slots__ = ("_bodyless", "_chunked", "_held", "_http10", "_length", "_sent", "_server",
                 "_writer", "closes", "finished", "started", "status")  # fmt: skip

    def __init__(
        self,
        server: HttpServer,
        writer: asyncio.StreamWriter,
        head: bool,
        keep_alive: bool = True,
        http10: bool = False,
    ) -> None:
        self._server = server
        self._writer = writer
        self._bodyless = head
        self._http10 = http10
        self._held = b""  # the head, written with the first chunk
        self._chunked = False
        self._length: int | None = None
        self._sent = 0
        self.closes = not keep_alive
        self.started = False
        self.finished = False
        self.status = 0

    async def start(self, status: int, headers: Headers) -> None:
        """The status and headers (without a content-length the body goes chunked)."""
        self._held = self._head(status, headers, None)

    async def send(self, data: bytes) -> None:
        if data and not self._bodyless:
            self._sent += len(data)
            if self._length is not None and self._sent > self._length:
                raise RuntimeError("answer longer than its content-length")
            self._write(http1.chunk(data) if self._chunked else data)
            await self._writer.drain()

    async def finish(self) -> None:
        if self._chunked and not self._bodyless:
            self._write(http1.LAST_CHUNK)
        else:
            self._write(b"")
            if self._length is not None and self._sent != self._length and not self._bodyless:
                raise RuntimeError("answer shorter than its content-length")
        self.finished = True
        await self._writer.drain()

    async def whole(
        self, status: int, body: bytes, content_type: bytes = b"", headers: Headers = ()
    ) -> None:
        """A complete answer with its length, in one write."""
        all_headers = [*headers]
        if content_type:
            all_headers.append((b"content-type", content_type))
        all_headers.append((b"content-length", b"%d" % len(body)))
        out = self._head(status, all_headers, len(body))
        self._writer.write(out if self._bodyless or not body else out + body)
        self.finished = True
        await self._writer.drain()

    async def respond(self, response: Response) -> None:
        """A handler's `Response`; its stream is closed however the answer ends."""
        headers = [(k.encode(), v.encode()) for k, v in response.headers]
        content_type = (response.content_type or "").encode()
        if response.stream is None:
            await self.whole(response.status, response.body, content_type, headers)
            return
        if content_type:
            headers.append((b"content-type", content_type))
        try:
            await self.start(response.status, headers)
            async for chunk in response.stream:
                await self.send(chunk)
            await self.finish()
        finally:
            await response.stream.aclose()

    def _head(self, status: int, headers: Headers, length: int | None) -> bytes:
        self.started = True
        self.status = status
        if length is None:
            declared = next((v for k, v in headers if k == b"content-length"), None)
            length = None if declared is None else int(declared)
        if status in http1.BODYLESS_STATUSES:
            self._bodyless = True
        elif length is None and self._http10:
            self.closes = True  # close-delimited
        self.closes = self.closes or self._server.closing
        extra = self._server.default_headers
        if self.closes:
            extra = [*extra, (b"connection", b"close")]
        if length is None and not self._http10 and status not in http1.BODYLESS_STATUSES:
            self._chunked = True
            headers = [*headers, CHUNKED]
        self._length = length
        return http1.response_head(status, [*extra, *headers])

    def _write(self, data: bytes) -> None:
        held, self._held = self._held, b""
        if held and len(data) <= COALESCE:
            self._writer.write(held + data)
            return
        if held:
            self._writer.write(held)
        self._writer.write(data)


Handler = Callable[[Request], Awaitable[Response]]
Replier = Callable[[Request, Reply], Awaitable[None]]


class HttpServer:
    def __init__(
        self,
        handler: Handler | None = None,
        default_headers: Sequence[tuple[str, str]] = (),
        keepalive_s: float = 120.0,
        log_error: Callable[[str, dict[str, object]], None] | None = None,
        *,
        replier: Replier | None = None,
        max_body: int = MAX_BODY,
        error_status: int = 500,
        error_message: str = "internal error",
    ) -> None:
        """Exactly one of `handler` (returns a `Response`) and `replier` (answers through a
        `Reply`). `log_error(event, fields)` reports connection and handler errors (default:
        the `modelplane.httpserver` logger). A request body over `max_body` bytes gets 413;
        a handler that raises before answering gets `error_status` with a JSON error
        `{"error": {"message": error_message, "code": error_status}}`."""
        if (handler is None) == (replier is None):
            raise ValueError("HttpServer takes exactly one of handler and replier")
        self.replier: Replier = replier or _responding(handler)  # type: ignore[arg-type]
        self.log_error = log_error or (lambda event, fields: log.warning("%s %s", event, fields))
        self.default_headers = [(k.encode(), v.encode()) for k, v in default_headers]
        self.keepalive_s = keepalive_s
        self.max_body = max_body
        self.error_status = error_status
        self.error_body = json.dumps(
            {"error": {"message": error_message, "code": error_status}}, separators=(",", ":")
        ).encode()
        self.closing = False
        self._server: asyncio.Server | None = None
        self._busy: dict[asyncio.StreamWriter, bool] = {}

    @property
    def in_flight(self) -> int:
        return sum(self._busy.values())

    async def start(
        self, host: str, port: int, tls: ssl.SSLContext | None = None, reuse_port: bool = False
    ) -> int:
        """Listen (HTTPS with `tls`; with `reuse_port`, SO_REUSEPORT: several processes on
        one port); returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._connection, host, port, reuse_address=True, reuse_port=reuse_port or None,
            backlog=2048, ssl=tls,
        )  # fmt: skip
        return int(self._server.sockets[0].getsockname()[1])

    async def shutdown(self, grace_s: float) -> None:
        """Stop listening, then drain: see the module docstring."""
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
        parser = http1.RequestParser(MAX_HEAD, self.max_body)
        self._busy[writer] = False
        try:
            while not self.closing:
                try:
                    message = await self._read(parser, reader, writer)
                except http1.ParseError as refused:
                    await self._refuse(writer, refused)
                    await _linger(reader, writer)
                    break
                if message is None:
                    break
                self._busy[writer] = True
                try:
                    if not await self._serve(parser, reader, writer, message):
                        break
                finally:
                    self._busy[writer] = False
        except (ConnectionError, TimeoutError):
            pass
        except Exception as error:
            self.log_error("connection_error", {"error": repr(error)})
        finally:
            self._busy.pop(writer, None)
            writer.close()

    async def _read(
        self,
        parser: http1.RequestParser,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> http1.Message | None:
        """The next request, or None when the client closed (or idled out) between requests."""
        while not parser.ready:
            if parser.held:
                data, parser.held = parser.held, b""
                parser.feed(data)
                continue
            if parser.expects_continue:
                writer.write(http1.CONTINUE)
                parser.continue_sent = True
            try:
                async with asyncio.timeout(self.keepalive_s):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                if parser.current is None:
                    return None
                raise http1.ParseError(408, "request body timed out") from None
            if not data:
                return None
            self._busy[writer] = True  # a request under way: a shutdown now lets it finish
            parser.feed(data)
        return parser.ready.popleft()

    async def _serve(
        self,
        parser: http1.RequestParser,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        message: http1.Message,
    ) -> bool:
        """Run the handler while watching for the client going away; False to close."""
        request = Request(message.method, message.target, message.headers, message.chunks)
        reply = Reply(self, writer, message.method == "HEAD", message.keep_alive, message.http10)
        work = asyncio.ensure_future(self.replier(request, reply))
        watch = asyncio.ensure_future(reader.read(READ_SIZE))
        done, _ = await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
        more: bytes | None = None  # what the client sent meanwhile (b"": it closed its side)
        if watch in done and work not in done:
            more = watch.result() if not watch.cancelled() and watch.exception() is None else b""
            if not more:  # the client is gone: stop the work (and what it holds upstream)
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                return False
            await asyncio.wait((work,))
        elif not watch.done():
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        elif watch.exception() is None:
            more = watch.result()
        error = work.exception() if not work.cancelled() else None
        if error is not None:
            fields: dict[str, object] = {
                "method": request.method,
                "path": request.path,
                "error": repr(error),
            }
            if reply.started:
                self.log_error("answer_cut_short", fields)
                return False
            self.log_error("handler_error", fields)
            await reply.whole(self.error_status, self.error_body, b"application/json")
        if not reply.finished or reply.closes or more == b"":
            return False
        parser.held = more or b""  # a pipelined next request: parsed once this answer is out
        return True

    async def _refuse(self, writer: asyncio.StreamWriter, refused: http1.ParseError) -> None:
        reply = Reply(self, writer, False, keep_alive=False)
        await reply.whole(
            refused.status, (refused.message + "\n").encode(), b"text/plain; charset=utf-8"
        )


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After a refusal: stop writing, then read what the client still sends until it closes
    (for at most `LINGER_S`), so closing with unread data does not reset the connection
    and lose the answer before the client reads it."""
    if writer.can_write_eof():
        writer.write_eof()
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(LINGER_S):
            while await reader.read(READ_SIZE):
                pass


def _responding(handler: Handler) -> Replier:
    """A `Response`-returning handler as a replier."""

    async def reply_with(request: Request, reply: Reply) -> None:
        await reply.respond(await handler(request))

    return reply_with
