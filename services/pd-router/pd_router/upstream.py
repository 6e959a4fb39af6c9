"""HTTP/1.1 client to the engine pods: `modelplane.http1` framing (httptools) over asyncio
streams, kept-alive connections.

`Upstream(address)` holds the idle connections to one pod. `open` sends one
request (the body as a sequence of buffers, written without joining them) and
returns an `Exchange` once the response head has arrived; its body is read
chunk by chunk with `chunks()` or whole with `read()`. A connection goes back to
the pool only when its exchange ended cleanly (the whole answer read, the engine
keeping the connection alive); `close()` on an unfinished exchange drops the
connection, which is how a cancelled request is cancelled upstream too (the
engine sees the client go away).

Guarantees: every failure before the response head (refused, reset, timed out,
bad framing) raises `UpstreamError` naming the pod address; a stale pooled
connection (closed by the engine while idle) is retried once on a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from modelplane import http1

READ_SIZE = 64 * 1024
MAX_IDLE = 64
COALESCE = 64 * 1024
"""A request up to this size goes out in one write (one syscall, one packet)."""
Buffer = bytes | bytearray | memoryview


class UpstreamError(Exception):
    """The pod could not be reached or did not answer with a response head."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()

    async def more(self, parser: http1.ResponseParser) -> None:
        """Read and parse what the engine sent next; at its end of the connection, the
        response either ends (close-delimited) or was cut short (`UpstreamError`)."""
        data = await self.reader.read(READ_SIZE)
        if data:
            parser.feed(data)
        elif not parser.at_eof():
            raise UpstreamError("connection closed before the answer ended")


class Exchange:
    """One request's response: status and headers at hand, the body still to read."""

    def __init__(self, upstream: Upstream, conn: _Connection, parser: http1.ResponseParser) -> None:
        self._upstream = upstream
        self._conn: _Connection | None = conn
        self._parser = parser
        self.status = parser.message.status
        self.headers = parser.message.headers

    def header(self, name: bytes) -> bytes | None:
        return self._parser.message.header(name)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection returns to the pool at its end."""
        conn, parser = self._conn, self._parser
        if conn is None:
            return
        body = parser.message.chunks
        while True:
            if body:
                parts = body[:]
                body.clear()
                for part in parts:
                    yield part
            if parser.done:
                self._release()
                return
            try:
                await conn.more(parser)
            except (OSError, http1.ParseError, UpstreamError) as error:
                raise UpstreamError(
                    f"{self._upstream.address}: body ended early: {error}"
                ) from None

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._parser.message.keep_alive:
            self._upstream.give_back(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Drop the connection unless the exchange already ended (then it is pooled)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class Upstream:
    """One pod's address and its idle kept-alive connections."""

    def __init__(self, host: str, port: int, connect_timeout_s: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.host_header = self.address.encode()
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[_Connection] = []
        self.closed = False

    def give_back(self, conn: _Connection) -> None:
        if self.closed or len(self._idle) >= MAX_IDLE or conn.reader.at_eof():
            conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        self.closed = True
        while self._idle:
            self._idle.pop().close()

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as error:
            raise UpstreamError(f"{self.address}: connect failed: {error or 'timed out'}") from None
        return _Connection(reader, writer)

    async def open(
        self,
        method: bytes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: Sequence[Buffer],
    ) -> Exchange:
        """Send the request and wait for the response head (the caller bounds the wait)."""
        length = sum(len(part) for part in body)
        head = http1.request_head(
            method,
            target,
            [(b"host", self.host_header), *headers, (b"content-length", b"%d" % length)],
        )
        pooled = bool(self._idle)
        conn = self._idle.pop() if pooled else await self._connect()
        bodyless = method == b"HEAD"
        try:
            return await self._exchange(conn, head, body, length, bodyless)
        except UpstreamError:
            if not pooled:
                raise
        # An idle connection the engine had closed: once more on a fresh one.
        return await self._exchange(await self._connect(), head, body, length, bodyless)

    async def _exchange(
        self, conn: _Connection, head: bytes, body: Sequence[Buffer], length: int, bodyless: bool
    ) -> Exchange:
        try:
            writer = conn.writer
            if length + len(head) <= COALESCE:
                writer.write(b"".join((head, *body)))  # a small request: one packet
            else:
                writer.write(head)
                for part in body:  # the buffers go out as they are
                    writer.write(part)
            await writer.drain()
            parser = http1.ResponseParser(bodyless)
            while not parser.head_done:
                await conn.more(parser)
            return Exchange(self, conn, parser)
        except (OSError, http1.ParseError, UpstreamError) as error:
            conn.close()
            raise UpstreamError(f"{self.address}: {error!r}") from None
        except BaseException:
            conn.close()
            raise
