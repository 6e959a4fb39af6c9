"""Forwarding one request to a Ready endpoint and relaying its answer unchanged.

`forward(client, request, reply, prefix, targets, extra)` sends the request to
the first target that takes it (a target that cannot be connected to is
skipped for the next; none left: 502), at the URL the front door would use
(`catalog.Target.url`), and relays status, headers and body as they come: the
body bytes as received (`aiter_raw`: no decoding, no re-chunking by size), a
stream chunk by chunk. `extra` headers (the held time) are added to the answer.

The request body (if any) goes out chunked (no Content-Length): an inference cluster's
gateway is a Traefik relaying HTTP/1.1 to the engine, and such a Go reverse
proxy cuts streamed answers to HTTP/1.1 requests with a body of known length
(golang/go#40747, see gateway-config's README); with a chunked body it does
not. Hop-by-hop headers (RFC 9110 section 7.6.1) are not passed on in either
direction; `Host` is the endpoint's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
from modelplane.httpserver import Reply, Request

from activator.answers import JSON, error_body
from activator.catalog import Target

HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
        b"host", b"content-length", b"expect",
    }
)  # fmt: skip
"""Not passed on to the endpoint (`content-length`: the body goes chunked; `host`: the
endpoint's)."""
ANSWER_DROPPED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"trailer"})
CLIENT_DEFAULTS = ("accept", "accept-encoding", "user-agent")
"""Headers httpx adds by itself: removed unless the client sent them (an endpoint must not
be asked for a compression the client never asked for)."""


def request_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The client's headers as the endpoint gets them."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name == b"connection"
        for token in value.split(b",")
    }
    return [(n, v) for n, v in headers if n not in HOP_BY_HOP and n not in named]


def answer_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The endpoint's headers as the client gets them."""
    return [(n, v) for n, v in headers if n.lower() not in ANSWER_DROPPED]


async def _body(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def forward(
    client: httpx.AsyncClient,
    request: Request,
    reply: Reply,
    prefix: str,
    targets: Sequence[Target],
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> str | None:
    """Relay the request to the first target that answers; the endpoint that answered, or
    None when none could be reached (the client got 502)."""
    headers = request_headers(request.raw_headers)
    failures = []
    for target in targets:
        url = target.url(prefix, request.path, request.query)
        body = _body(request.chunks) if any(request.chunks) else None  # none: no body at all
        outgoing = client.build_request(request.method, url, headers=headers, content=body)
        for name in CLIENT_DEFAULTS:
            if request.header(name.encode()) is None:
                outgoing.headers.pop(name, None)
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TransportError as error:
            failures.append(f"{target.endpoint}: {error!r}")
            continue
        try:
            await reply.start(answer.status_code, [*answer_headers(answer.headers.raw), *extra])
            async for chunk in answer.aiter_raw():
                await reply.send(chunk)
            await reply.finish()
        finally:
            await answer.aclose()
        return target.endpoint
    message = "no endpoint could be reached: " + "; ".join(failures)
    await reply.whole(502, error_body(message, "endpoint_unreachable"), JSON, extra)
    return None
