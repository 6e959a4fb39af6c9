"""modelplane.http1: requests and responses parsed from bytes as a peer would send them
(whole, split at every byte, pipelined, chunked, malformed, oversized) and the bytes of
heads and chunks written."""

from __future__ import annotations

import pytest
from modelplane.http1 import (
    ParseError,
    RequestParser,
    ResponseParser,
    chunk,
    request_head,
    response_head,
)

POST = b"POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nX-Rep: 1\r\nX-Rep: 2\r\n"


def parse(*pieces: bytes, max_head: int = 65536, max_body: int = 1 << 20) -> RequestParser:
    parser = RequestParser(max_head, max_body)
    for piece in pieces:
        parser.feed(piece)
    return parser


def test_a_request_split_at_any_byte_parses_the_same() -> None:
    data = POST + b"Content-Length: 11\r\n\r\nhello world"
    for cut in range(1, len(data)):
        parser = parse(data[:cut], data[cut:])
        (message,) = parser.ready
        assert (message.method, message.target) == ("POST", b"/v1/completions?x=1")
        assert message.headers[:3] == [(b"host", b"a"), (b"x-rep", b"1"), (b"x-rep", b"2")]
        assert b"".join(message.chunks) == b"hello world"
        assert message.keep_alive and not message.http10


def test_pipelined_requests_come_out_in_order() -> None:
    data = (
        POST + b"Content-Length: 3\r\n\r\nabc"
        b"GET /two HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /three HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
        b"GET /four HTTP/1.1\r\nHo"
    )
    parser = parse(data)
    got = [(m.method, m.target, b"".join(m.chunks)) for m in parser.ready]
    assert got == [
        ("POST", b"/v1/completions?x=1", b"abc"),
        ("GET", b"/two", b""),
        ("POST", b"/three", b"def"),
    ]
    assert parser.current is not None  # the fourth is under way
    parser.feed(b"st: a\r\n\r\n")
    assert parser.ready[-1].target == b"/four"


def test_a_chunked_body_keeps_its_pieces_and_a_large_one_arrives_whole() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(chunk(big[i : i + 100_000]) for i in range(0, len(big), 100_000))
    data = head + body + b"0\r\n\r\n"
    parser = parse(*(data[i : i + 65536] for i in range(0, len(data), 65536)), max_body=1 << 21)
    (message,) = parser.ready
    assert b"".join(message.chunks) == big
    assert len(message.chunks) > 1


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad request"),
        (b"GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400, "Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
         "bad request"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad request"),
        (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "bad request"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413, "over 1000 bytes"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" + b"x" * 1001, 413,
         "over 1000 bytes"),
    ],
)  # fmt: skip
def test_malformed_or_oversized_requests_are_refused(data: bytes, status: int, says: str) -> None:
    with pytest.raises(ParseError) as refused:
        parse(data, max_body=1000)
    assert refused.value.status == status
    assert says in refused.value.message


def test_a_head_over_the_cap_is_refused_before_it_ends() -> None:
    parser = RequestParser(max_head=1024, max_body=1000)
    parser.feed(b"GET / HTTP/1.1\r\nX-Big: ")
    with pytest.raises(ParseError) as refused:
        for _ in range(10):
            parser.feed(b"y" * 200)
    assert (refused.value.status, refused.value.message) == (431, "request head over 1024 bytes")
    fits = parse(b"GET / HTTP/1.1\r\nX-Big: " + b"y" * 900 + b"\r\n\r\n", max_head=1024)
    assert len(fits.ready) == 1
    with pytest.raises(ParseError) as whole:  # all of it in one piece
        parse(b"GET / HTTP/1.1\r\nX-Big: " + b"y" * 1100 + b"\r\n\r\n", max_head=1024)
    assert whole.value.status == 431


def test_a_long_kept_alive_connection_counts_each_head_on_its_own() -> None:
    parser = RequestParser(max_head=1024, max_body=1000)
    head = b"GET /x HTTP/1.1\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n"
    for _ in range(100):  # 40 KiB of heads in all, each under the cap
        parser.feed(head)
    assert len(parser.ready) == 100
    parser.feed(head * 10)  # pipelined in one piece too
    assert len(parser.ready) == 110


@pytest.mark.parametrize(
    ("start", "keep_alive", "http10"),
    [
        (b"GET / HTTP/1.1\r\n", True, False),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n", False, False),
        (b"GET / HTTP/1.0\r\n", False, True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n", False, True),
    ],
)
def test_keep_alive_follows_the_version_and_connection_header(
    start: bytes, keep_alive: bool, http10: bool
) -> None:
    (message,) = parse(start + b"\r\n").ready
    assert (message.keep_alive, message.http10) == (keep_alive, http10)


def test_a_client_expecting_100_continue_is_waited_for_once() -> None:
    parser = parse(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert parser.expects_continue
    parser.continue_sent = True
    assert not parser.expects_continue
    parser.feed(b"ok")
    assert b"".join(parser.ready[0].chunks) == b"ok"
    assert not parse(POST + b"Content-Length: 2\r\n\r\n").expects_continue


def test_an_upgrade_request_is_parsed_as_a_plain_one_and_what_follows_too() -> None:
    parser = parse(
        b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /next HTTP/1.1\r\n\r\n"
    )
    assert [m.target for m in parser.ready] == [b"/ws", b"/next"]


def respond(*pieces: bytes, bodyless: bool = False) -> ResponseParser:
    parser = ResponseParser(bodyless)
    for piece in pieces:
        parser.feed(piece)
    return parser


def test_a_response_with_a_length_or_chunked_ends_at_its_end() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
    for cut in range(1, len(data)):
        parser = respond(data[:cut], data[cut:])
        assert parser.done and parser.message.keep_alive
        assert parser.message.status == 200
        assert parser.message.headers == [(b"content-length", b"5"), (b"x-a", b"b")]
        assert b"".join(parser.message.chunks) == b"hello"
    chunked = respond(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk(b"data: 1\n\n")
    )
    assert chunked.head_done and not chunked.done
    assert chunked.message.chunks == [b"data: 1\n\n"]
    chunked.feed(b"0\r\n\r\n")
    assert chunked.done


def test_a_close_delimited_response_ends_with_the_connection_and_a_cut_one_does_not() -> None:
    open_ended = respond(b"HTTP/1.1 200 OK\r\n\r\npart")
    assert not open_ended.done
    assert open_ended.at_eof()
    assert not open_ended.message.keep_alive
    cut = respond(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
    assert not cut.at_eof()
    assert not respond(b"HTTP/1.1 200 O").at_eof()


def test_informational_heads_are_skipped_and_bodyless_answers_end_at_their_head() -> None:
    parser = respond(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    )
    assert (parser.message.status, parser.done) == (201, True)
    assert parser.message.headers == [(b"content-length", b"0")]
    head = respond(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", bodyless=True)
    assert head.done and head.message.chunks == []
    assert respond(b"HTTP/1.1 204 No Content\r\n\r\n").done
    closing = respond(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert closing.done and not closing.message.keep_alive
    with pytest.raises(ParseError):
        respond(b"HTTP/1.1 2xx\r\n\r\n")


def test_heads_and_chunks_are_written_as_the_protocol_says() -> None:
    assert response_head(404, [(b"content-length", b"0")]) == (
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    )
    assert response_head(299, []) == b"HTTP/1.1 299 \r\n\r\n"
    assert request_head(b"GET", b"/x?y", [(b"host", b"a:1")]) == (
        b"GET /x?y HTTP/1.1\r\nhost: a:1\r\n\r\n"
    )
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert chunk(memoryview(b"abc")) == b"3\r\nabc\r\n"


def test_a_header_that_would_split_the_message_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="x-injected"):
        response_head(200, [(b"x-ok", b"1"), (b"x-injected", b"a\r\nset-cookie: b")])
    with pytest.raises(ValueError, match="x-bare"):
        request_head(b"GET", b"/", [(b"x-bare", b"a\nb")])
