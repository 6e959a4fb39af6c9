"""pd_router.upstream against a raw socket server answering as engines may: a length, chunked,
close-delimited, a HEAD answer, a body cut short; kept-alive connections reused only after a
clean end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from pd_router.upstream import Upstream, UpstreamError

SAFETY_S = 10.0
"""Only a bound on a hung test; nothing is asserted about time."""

ANSWERS = {
    b"/length": b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"/until-close": b"HTTP/1.1 200 OK\r\n\r\nall of it",
    b"/head": b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n",
    b"/cut": b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this",
    b"/close": b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
}


def with_engine(test: Callable[[Upstream, list[bytes]], Awaitable[None]]) -> list[bytes]:
    """Run `test` against a server that answers each request by its path; returns the
    requests' heads as received (one per request) and counts connections in the last item."""
    heads: list[bytes] = []
    connections = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                path = head.split(b" ")[1]
                writer.write(ANSWERS[path])
                await writer.drain()
                if path in (b"/until-close", b"/cut", b"/close"):
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        upstream = Upstream("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            async with asyncio.timeout(SAFETY_S):
                await test(upstream, heads)
        finally:
            upstream.close()
            server.close()

    asyncio.run(main())
    return [*heads, b"%d" % connections[0]]


def test_bodies_of_every_framing_are_read_and_the_connection_reused_after_clean_ends() -> None:
    async def test(upstream: Upstream, heads: list[bytes]) -> None:
        for path, want in ((b"/length", b"hello"), (b"/chunked", b"abcde"), (b"/head", b"")):
            method = b"HEAD" if path == b"/head" else b"POST"
            exchange = await upstream.open(method, path, [(b"x-a", b"1")], [b"{", b"}"])
            assert exchange.status == 200
            assert await exchange.read() == want
        exchange = await upstream.open(b"GET", b"/until-close", [], [])
        assert await exchange.read() == b"all of it"

    heads = with_engine(test)
    assert heads[0].startswith(b"POST /length HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\nx-a: 1\r\ncontent-length: 2\r\n\r\n" in heads[0]
    assert heads[-1] == b"1"  # one connection carried all four


def test_a_body_cut_short_is_an_error_and_a_closing_engine_is_not_reused() -> None:
    async def test(upstream: Upstream, heads: list[bytes]) -> None:
        exchange = await upstream.open(b"GET", b"/cut", [], [])
        with pytest.raises(UpstreamError, match="body ended early"):
            await exchange.read()
        closing = await upstream.open(b"GET", b"/close", [], [])
        assert await closing.read() == b"ok"
        again = await upstream.open(b"GET", b"/length", [], [])
        assert await again.read() == b"hello"

    assert with_engine(test)[-1] == b"3"  # /cut, /close, then a fresh one
