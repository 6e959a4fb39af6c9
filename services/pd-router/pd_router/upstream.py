"""HTTP/1.1 client to the engine pods: h11 framing over asyncio streams, kept-alive connections.

`Upstream(address)` holds the idle connections to one pod. `open` sends one
request (the body as a sequence of buffers, written without joining them) and
returns an `Exchange` once the response head has arrived; its body is read
chunk by chunk with `chunks()` or whole with `read()`. A connection goes back to
the pool only when its exchange ended cleanly (both sides DONE); `close()` on an
unfinished exchange drops the connection, which is how a cancelled request is
cancelled upstream too (the engine sees the client go away).

Guarantees: every failure before the response head (refused, reset, timed out,
bad framing) raises `UpstreamError` naming the pod address; a stale pooled
connection (closed by the engine while idle) is retried once on a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import h11

READ_SIZE = 64 * 1024
MAX_IDLE = 64
COALESCE = 64 * 1024
"""A request up to this size goes out in one write (one syscall, one packet)."""
Buffer = bytes | bytearray | memoryview


class UpstreamError(Exception):
    """The pod could not be reached or did not answer with a response head."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.writer.close()

    async def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_SIZE)
            self.h11.receive_data(data)


class Exchange:
    """One request's response: status and headers at hand, the body still to read."""

    def __init__(self, upstream: Upstream, conn: _Connection, head: h11.Response) -> None:
        self._upstream = upstream
        self._conn: _Connection | None = conn
        self.status = head.status_code
        self.headers: list[tuple[bytes, bytes]] = list(head.headers)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection returns to the pool at its end."""
        conn = self._conn
        if conn is None:
            return
        while True:
            event = await conn.next_event()
            if isinstance(event, h11.Data):
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                self._release()
                return
            else:
                raise UpstreamError(f"{self._upstream.address}: body ended early ({event!r})")

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
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
        head = h11.Request(
            method=method,
            target=target,
            headers=[
                (b"host", self.address.encode()),
                *headers,
                (b"content-length", str(length).encode()),
            ],
        )
        pooled = bool(self._idle)
        conn = self._idle.pop() if pooled else await self._connect()
        try:
            return await self._exchange(conn, head, body)
        except UpstreamError:
            if not pooled:
                raise
        # An idle connection the engine had closed: once more on a fresh one.
        return await self._exchange(await self._connect(), head, body)

    async def _exchange(
        self, conn: _Connection, head: h11.Request, body: Sequence[Buffer]
    ) -> Exchange:
        try:
            writer = conn.writer
            out = [conn.h11.send(head) or b""]
            for part in body:  # passthrough: h11 counts the bytes, the buffers go out as they are
                pieces = conn.h11.send_with_data_passthrough(h11.Data(data=part))  # type: ignore[arg-type]
                out.extend(pieces or ())
            out.append(conn.h11.send(h11.EndOfMessage()) or b"")
            if sum(len(piece) for piece in out) <= COALESCE:
                writer.write(b"".join(out))  # a small request: one packet
            else:
                for piece in out:
                    writer.write(piece)
            await conn.writer.drain()
            while True:
                event = await conn.next_event()
                if isinstance(event, h11.Response):
                    return Exchange(self, conn, event)
                if isinstance(event, h11.InformationalResponse):
                    continue
                raise UpstreamError(f"{self.address}: connection closed before a response")
        except (OSError, h11.ProtocolError) as error:
            conn.close()
            raise UpstreamError(f"{self.address}: {error!r}") from None
        except BaseException:
            conn.close()
            raise
