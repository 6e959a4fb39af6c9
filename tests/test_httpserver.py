"""modelplane.httpserver on loopback: both handler styles, streaming as produced, the head
coalesced with the first chunk, client hang-ups cancelling the handler, the body cap, the
error status, and request bodies kept as received."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from modelplane.httpserver import (
    HttpServer,
    Reply,
    Request,
    Response,
    json_response,
    text_response,
)

SAFETY_S = 10.0
"""Only a bound on a hung test; nothing is asserted about time."""


def run(server: HttpServer, client: Callable[[str], Awaitable[None]]) -> None:
    async def main() -> None:
        port = await server.start("127.0.0.1", 0)
        try:
            async with asyncio.timeout(SAFETY_S):
                await client(f"http://127.0.0.1:{port}")
        finally:
            await server.shutdown(0)

    asyncio.run(main())


async def raw_exchange(
    base: str, request: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    return reader, writer


def test_a_response_handler_gets_its_body_headers_and_default_headers() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        if request.path == "/text":
            return text_response(404, "no such thing\n")
        return json_response(201, {"got": json.loads(request.body)}, [("x-one", "1")])

    async def client(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            answer = await http.post(
                "/v1/x?a=1", json={"k": "v"}, headers=[("x-rep", "a"), ("x-rep", "b")]
            )
            assert answer.status_code == 201
            assert answer.json() == {"got": {"k": "v"}}
            assert answer.headers["x-pod"] == "p0"
            assert answer.headers["x-one"] == "1"
            assert answer.headers["content-type"] == "application/json"
            text = await http.get("/text")
            assert (text.status_code, text.text) == (404, "no such thing\n")
            assert text.headers["x-pod"] == "p0"
            head = await http.head("/text")
            assert head.status_code == 404
            assert head.content == b""
            assert head.headers["content-length"] == str(len("no such thing\n"))

    run(HttpServer(handler, [("x-pod", "p0")]), client)
    request = seen[0]
    assert (request.method, request.path, request.query) == ("POST", "/v1/x", "a=1")
    assert request.target == b"/v1/x?a=1"
    assert request.headers["x-rep"] == "a, b"
    assert [v for k, v in request.raw_headers if k == b"x-rep"] == [b"a", b"b"]
    assert request.header(b"x-rep") == b"a"
    assert request.header(b"x-absent") is None


def test_a_streamed_response_goes_out_chunk_by_chunk_as_produced() -> None:
    received_first = asyncio.Event()

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield b"data: one\n\n"
        await received_first.wait()  # only the client having read chunk one lets it go on
        yield b"data: two\n\n"

    async def handler(request: Request) -> Response:
        return Response(200, content_type="text/event-stream", stream=chunks())

    async def client(base: str) -> None:
        async with (
            httpx.AsyncClient(base_url=base) as http,
            http.stream("GET", "/") as answer,
        ):
            assert answer.headers["transfer-encoding"] == "chunked"
            assert answer.headers["content-type"] == "text/event-stream"
            parts = answer.aiter_raw()
            assert await anext(parts) == b"data: one\n\n"
            received_first.set()
            assert [part async for part in parts] == [b"data: two\n\n"]

    run(HttpServer(handler), client)


def test_a_replier_streams_and_its_head_goes_out_with_the_first_chunk() -> None:
    started, go_on, go_on_again = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def replier(request: Request, reply: Reply) -> None:
        await reply.start(200, [(b"content-type", b"text/plain")])
        started.set()
        await go_on.wait()
        await reply.send(b"first")
        await go_on_again.wait()
        await reply.send(b"second")
        await reply.finish()

    async def client(base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        loop = asyncio.get_running_loop()
        with socket.create_connection((host, int(port))) as sock:
            sock.setblocking(False)
            await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await started.wait()
            with pytest.raises(BlockingIOError):
                sock.recv(65536)  # the head is held back until there is a chunk
            go_on.set()
            first = await loop.sock_recv(sock, 65536)
            head, _, body = first.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"transfer-encoding: chunked" in head.lower()
            assert body == b"5\r\nfirst\r\n"  # in the same read as the head
            go_on_again.set()
            rest = b""
            while not rest.endswith(b"0\r\n\r\n"):
                rest += await loop.sock_recv(sock, 65536)
            assert rest == b"6\r\nsecond\r\n0\r\n\r\n"

    run(HttpServer(replier=replier), client)


@pytest.mark.parametrize("style", ["replier", "stream"])
def test_a_client_hanging_up_cancels_the_handler(style: str) -> None:
    waiting, stopped = asyncio.Event(), asyncio.Event()

    async def upstream() -> AsyncGenerator[bytes, None]:
        try:
            yield b"partial"
            waiting.set()
            await asyncio.Event().wait()  # an upstream that never answers
            yield b"never"
        finally:
            stopped.set()

    async def replier(request: Request, reply: Reply) -> None:
        try:
            waiting.set()
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async def handler(request: Request) -> Response:
        return Response(200, stream=upstream())

    server = HttpServer(replier=replier) if style == "replier" else HttpServer(handler)

    async def client(base: str) -> None:
        _, writer = await raw_exchange(base, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await waiting.wait()
        assert server.in_flight == 1
        writer.close()
        await stopped.wait()  # hangs (and fails at SAFETY_S) unless the work was stopped

    run(server, client)
    assert stopped.is_set()


def test_bodies_over_the_cap_get_413_and_at_the_cap_get_through() -> None:
    sizes: list[int] = []

    async def handler(request: Request) -> Response:
        sizes.append(len(request.body))
        return Response(200)

    async def client(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/", content=b"x" * 1000)).status_code == 200
            declared = await http.post("/", content=b"x" * 1001)
            assert declared.status_code == 413
            assert declared.text == "request body over 1000 bytes\n"
            # far over: the refusal is read although most of the body was never taken
            assert (await http.post("/", content=b"z" * (4 << 20))).status_code == 413

            async def chunked() -> AsyncGenerator[bytes, None]:
                for _ in range(3):
                    yield b"y" * 400

            streamed = await http.post("/", content=chunked())
            assert streamed.status_code == 413
            assert streamed.headers["connection"] == "close"

    run(HttpServer(handler, max_body=1000), client)
    assert sizes == [1000]


def test_a_request_body_is_kept_as_received_and_joined_at_most_once() -> None:
    one = Request("POST", b"/", [], [b"whole"])
    assert one.body is one.chunks[0]
    several = Request("POST", b"/", [], [b"ab", b"cd", b"e"])
    assert several.body == b"abcde"
    assert several.body is several.body
    assert Request("GET", b"/", [], []).body == b""
    got: list[Request] = []
    payload = bytes(range(256)) * 8192  # 2 MiB: arrives over several reads

    async def replier(request: Request, reply: Reply) -> None:
        got.append(request)
        await reply.whole(200, b"ok", b"text/plain")

    async def client(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/", content=payload)).text == "ok"

    run(HttpServer(replier=replier, max_body=4 * 1024 * 1024), client)
    assert len(got[0].chunks) > 1
    assert b"".join(got[0].chunks) == payload
    assert got[0].body == payload


@pytest.mark.parametrize(
    ("settings", "status", "message"),
    [({}, 500, "internal error"), ({"error_status": 502, "error_message": "router error"},
                                   502, "router error")],
)  # fmt: skip
def test_a_handler_that_fails_before_answering_gets_the_chosen_error(
    settings: dict[str, Any], status: int, message: str
) -> None:
    async def replier(request: Request, reply: Reply) -> None:
        if request.path == "/late":
            await reply.start(200, [])
            await reply.send(b"half")
        raise RuntimeError("broken")

    errors: list[str] = []
    server = HttpServer(
        replier=replier, log_error=lambda event, fields: errors.append(event), **settings
    )

    async def client(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            answer = await http.get("/early")
            assert answer.status_code == status
            assert answer.json() == {"error": {"message": message, "code": status}}
            with pytest.raises(httpx.RemoteProtocolError):  # cut short, never passed as whole
                await http.get("/late")

    run(server, client)
    assert errors == ["handler_error", "answer_cut_short"]


def test_a_server_takes_exactly_one_kind_of_handler() -> None:
    async def handler(request: Request) -> Response:
        return Response(200)

    async def replier(request: Request, reply: Reply) -> None:
        await reply.whole(200, b"")

    with pytest.raises(ValueError, match="exactly one of handler and replier"):
        HttpServer()
    with pytest.raises(ValueError, match="exactly one of handler and replier"):
        HttpServer(handler, replier=replier)


def test_a_shutdown_lets_a_stream_finish_and_refuses_new_connections() -> None:
    """Graceful shutdown: the listener closes at once, an idle kept-alive connection is
    closed, a stream in flight goes on to its end."""
    streaming, go_on = asyncio.Event(), asyncio.Event()

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield b"data: one\n\n"
        streaming.set()
        await go_on.wait()
        yield b"data: two\n\n"

    async def handler(request: Request) -> Response:
        if request.path == "/quick":
            return text_response(200, "ok")
        return Response(200, content_type="text/event-stream", stream=chunks())

    server = HttpServer(handler)

    async def client(base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        idle_reader, idle_writer = await raw_exchange(
            base, b"GET /quick HTTP/1.1\r\nhost: x\r\n\r\n"
        )
        assert (await idle_reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200 ")
        async with httpx.AsyncClient(base_url=base) as http:
            async with http.stream("GET", "/stream") as answer:
                parts = answer.aiter_raw()
                assert await anext(parts) == b"data: one\n\n"
                await streaming.wait()
                draining = asyncio.create_task(server.shutdown(SAFETY_S))
                await asyncio.sleep(0)
                assert await idle_reader.read() == b""  # the idle connection was closed
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection(host, int(port))
                assert not draining.done()
                go_on.set()
                assert [part async for part in parts] == [b"data: two\n\n"]
            await draining
            assert server.in_flight == 0
        idle_writer.close()

    run(server, client)


def test_a_shutdown_lets_a_request_still_arriving_be_answered() -> None:
    async def handler(request: Request) -> Response:
        return json_response(200, {"size": len(request.body)})

    server = HttpServer(handler)

    async def client(base: str) -> None:
        head = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n"
        reader, writer = await raw_exchange(base, head + b"01234")
        while not server.in_flight:  # the server has read the first part
            await asyncio.sleep(0.01)
        draining = asyncio.create_task(server.shutdown(SAFETY_S))
        await asyncio.sleep(0.05)
        writer.write(b"56789")
        await writer.drain()
        answer = await reader.read()  # to the end: the server closes after answering
        head_out, _, body = answer.partition(b"\r\n\r\n")
        assert head_out.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in head_out.lower()
        assert json.loads(body) == {"size": 10}
        await draining
        writer.close()

    run(server, client)


def test_a_shutdown_cuts_what_outlasts_its_grace_period() -> None:
    cancelled = asyncio.Event()

    async def replier(request: Request, reply: Reply) -> None:
        await reply.start(200, [(b"content-type", b"text/plain")])
        await reply.send(b"first")
        try:
            await asyncio.Event().wait()  # never finishes
        finally:
            cancelled.set()

    server = HttpServer(replier=replier)

    async def client(base: str) -> None:
        reader, writer = await raw_exchange(base, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await reader.readuntil(b"first\r\n")
        await server.shutdown(0.1)
        rest = await reader.read()
        assert not rest.endswith(b"0\r\n\r\n")  # cut short: no last chunk
        await cancelled.wait()  # the handler was stopped with its connection
        writer.close()

    run(server, client)


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await reader.read(-1)


def test_pipelined_requests_on_one_connection_are_answered_in_order() -> None:
    async def handler(request: Request) -> Response:
        return text_response(200, f"{request.path}:{request.body.decode()}")

    async def client(base: str) -> None:
        reader, writer = await raw_exchange(
            base,
            b"POST /a HTTP/1.1\r\ncontent-length: 1\r\n\r\n1"
            b"POST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n1\r\n2\r\n0\r\n\r\n"
            b"GET /c HTTP/1.1\r\nconnection: close\r\n\r\n",
        )
        answers = (await read_all(reader)).split(b"HTTP/1.1 200 OK\r\n")[1:]
        assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"/a:1", b"/b:2", b"/c:"]
        assert b"connection: close" in answers[2] and b"connection" not in answers[0]
        writer.close()

    run(HttpServer(handler), client)


def test_an_http10_client_gets_a_close_delimited_stream_and_the_connection_closed() -> None:
    async def chunks() -> AsyncGenerator[bytes, None]:
        yield b"one "
        yield b"two"

    async def handler(request: Request) -> Response:
        return Response(200, stream=chunks())

    async def client(base: str) -> None:
        reader, writer = await raw_exchange(base, b"GET / HTTP/1.0\r\n\r\n")
        head, _, body = (await read_all(reader)).partition(b"\r\n\r\n")
        assert b"connection: close" in head and b"transfer-encoding" not in head
        assert body == b"one two"
        writer.close()

    run(HttpServer(handler), client)


def test_a_client_expecting_100_continue_gets_it_before_sending_its_body() -> None:
    async def handler(request: Request) -> Response:
        return text_response(200, request.body.decode())

    async def client(base: str) -> None:
        reader, writer = await raw_exchange(
            base, b"POST / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n"
        )
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"body")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert await reader.readexactly(4) == b"body"
        writer.close()

    run(HttpServer(handler), client)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nx-big: " + b"y" * (70 * 1024) + b"\r\n\r\n", b"431"),
    ],
    ids=["garbage", "bad-length", "huge-head"],
)
def test_malformed_requests_get_a_refusal_naming_the_fault(
    request_bytes: bytes, status: bytes
) -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200)

    async def client(base: str) -> None:
        reader, writer = await raw_exchange(base, request_bytes)
        head, _, body = (await read_all(reader)).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status + b" ")
        assert b"connection: close" in head and b"x-pod: p0" in head
        assert body.startswith(b"request head over" if status == b"431" else b"bad request")
        writer.close()

    run(HttpServer(handler, [("x-pod", "p0")]), client)
    assert seen == []


def test_an_answer_that_breaks_its_own_content_length_is_cut_short() -> None:
    async def replier(request: Request, reply: Reply) -> None:
        await reply.start(200, [(b"content-length", b"10")])
        await reply.send(b"short")
        await reply.finish()

    errors: list[str] = []

    async def client(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get("/")

    run(HttpServer(replier=replier, log_error=lambda event, _: errors.append(event)), client)
    assert errors == ["answer_cut_short"]
