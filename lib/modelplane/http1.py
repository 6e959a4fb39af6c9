"""HTTP/1.1 framing: parsing with httptools (llhttp, the C parser Node.js and uvicorn use)
and the bytes of heads and chunks written by hand; no I/O.

`RequestParser` (a server's side) takes the bytes a client sends and hands out
each request once it has arrived to its end (`Message`: method, target, headers
with lower-cased names as received, the body as the chunks that came, the
version and whether the client keeps the connection alive); pipelined requests
queue in order. It refuses with `ParseError` (a status and a message): bad
framing (400), a head over `max_head` bytes (431), a body over `max_body`
bytes, declared or as it arrives (413). `ResponseParser` (a client's side)
parses one response: its head, then its body chunks, then its end; a
close-delimited body ends when the connection does (`at_eof`).

`response_head`, `request_head` and `chunk` build the bytes that go out. Header
values containing CR or LF are refused (`ValueError` naming the header), so no
caller can split a message.
"""

from __future__ import annotations

from collections import deque

import httptools

LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
REASONS = {
    100: b"Continue", 200: b"OK", 201: b"Created", 204: b"No Content", 400: b"Bad Request",
    401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 413: b"Content Too Large", 429: b"Too Many Requests",
    431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
    502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout",
}  # fmt: skip
BODYLESS_STATUSES = frozenset((204, 304))
Headers = list[tuple[bytes, bytes]]


class ParseError(Exception):
    """Bytes that are not an acceptable HTTP/1.1 message: the status to refuse them with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _header_block(headers: Headers) -> bytes:
    block = b"".join([b"%s: %s\r\n" % pair for pair in headers])
    if block.count(b"\n") != len(headers) or block.count(b"\r") != len(headers):
        for name, value in headers:
            if b"\r" in name + value or b"\n" in name + value:
                raise ValueError(f"header {name!r}: CR or LF in a header line")
    return block


def response_head(status: int, headers: Headers) -> bytes:
    """`HTTP/1.1 <status> <reason>`, the headers as given, the blank line."""
    reason = REASONS.get(status, b"")
    return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, reason, _header_block(headers))


def request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (method, target, _header_block(headers))


def chunk(data: bytes | bytearray | memoryview) -> bytes:
    """One chunk of a chunked body (an empty `data` would end the body: callers skip it)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Message:
    """One request or response: its head, and its body as the chunks that came."""

    __slots__ = ("chunks", "headers", "http10", "keep_alive", "method", "status", "target")

    def __init__(self) -> None:
        self.method = ""
        self.target = b""
        self.status = 0
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.http10 = False
        self.keep_alive = True

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RequestParser:
    """A client's bytes in, complete requests out (`ready`), in the order sent."""

    def __init__(self, max_head: int, max_body: int) -> None:
        self.max_head = max_head
        self.max_body = max_body
        self.ready: deque[Message] = deque()
        self.current: Message | None = None
        """The request under way (its first bytes arrived), if any."""
        self.continue_sent = False
        self.held = b""
        """Bytes read while a request was being answered: parsed before reading more."""
        self._in_head = False
        self._raw_head = 0  # bytes fed while a head was incomplete
        self._head_size = 0  # bytes of the head's parsed parts
        self._body_size = 0
        self._error: ParseError | None = None
        self._parser = httptools.HttpRequestParser(self)

    @property
    def expects_continue(self) -> bool:
        """The request under way has its head and waits for `100 Continue` before its body."""
        current = self.current
        return (
            current is not None
            and not self._in_head
            and not self.continue_sent
            and current.header(b"expect") == b"100-continue"
        )

    def feed(self, data: bytes) -> None:
        """Parse `data`; a `ParseError` is final (the connection is to be refused)."""
        if self._in_head or self.current is None:
            self._raw_head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:  # answered as a plain request
            self._parser = httptools.HttpRequestParser(self)
            self.feed(data[upgrade.args[0] :])
        except httptools.HttpParserCallbackError:
            raise self._error or ParseError(400, "bad request") from None
        except httptools.HttpParserError as error:
            raise ParseError(400, f"bad request: {error}") from None
        if self._in_head and self._raw_head > self.max_head:
            raise ParseError(431, f"request head over {self.max_head} bytes")

    def _refuse(self, status: int, message: str) -> None:
        self._error = ParseError(status, message)
        raise self._error

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.current = Message()
        self.continue_sent = False
        self._in_head = True
        self._head_size = 0
        self._body_size = 0

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.max_head:
            self._refuse(431, f"request head over {self.max_head} bytes")

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self._count_head(len(url))
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self._count_head(len(name) + len(value) + 4)
        self.current.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        current = self.current
        assert current is not None
        self._in_head = False
        self._raw_head = 0
        parser = self._parser
        current.method = parser.get_method().decode("ascii")
        current.http10 = parser.get_http_version() == "1.0"
        current.keep_alive = parser.should_keep_alive() and not current.http10
        declared = current.header(b"content-length")
        if declared is not None and int(declared) > self.max_body:
            self._refuse(413, f"request body over {self.max_body} bytes")

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self._body_size += len(body)
        if self._body_size > self.max_body:
            self._refuse(413, f"request body over {self.max_body} bytes")
        self.current.chunks.append(body)

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.ready.append(self.current)
        self.current = None


class ResponseParser:
    """One response's bytes in: `head_done` once its head is in (`message` has status and
    headers), body chunks taken from `message.chunks` as they come, `done` at its end.
    Informational (1xx) heads are skipped. `bodyless`: the answer to a HEAD request."""

    def __init__(self, bodyless: bool = False) -> None:
        self.message = Message()
        self.head_done = False
        self.done = False
        self._bodyless = bodyless
        self._framed = False
        self._parser = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            raise ParseError(502, f"bad response: {error}") from None

    def at_eof(self) -> bool:
        """The connection ended: whether that completes the response (a close-delimited
        body) rather than cutting it short."""
        if self.head_done and not self._framed and not self.done:
            self.done = True
            self.message.keep_alive = False
        return self.done

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.message.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser, message = self._parser, self.message
        status = parser.get_status_code()
        if 100 <= status < 200:  # informational: the real head follows
            message.headers = []
            return
        message.status = status
        message.http10 = parser.get_http_version() == "1.0"
        message.keep_alive = parser.should_keep_alive()
        self._framed = (
            self._bodyless
            or status in BODYLESS_STATUSES
            or message.header(b"content-length") is not None
            or message.header(b"transfer-encoding") is not None
        )
        self.head_done = True
        if self._bodyless:
            self.done = True

    def on_body(self, body: bytes) -> None:
        if not self.done:
            self.message.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.head_done:
            self.done = True
