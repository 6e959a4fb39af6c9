"""One client request through the router: prefill, hand-off, decode, relay.

OpenAI requests (`POST /v1/chat/completions`, `/v1/completions`) with a
prompt of at least `min_prefill_chars` characters:
1. a prefill pod is chosen by prefix affinity (`affinity.Ring`) and sent the
   client's body with `kv_transfer_params: {do_remote_decode: true, ...}`,
   `max_tokens: 1`, `stream: false` and no `stream_options`, under the same
   `X-Request-Id` as the decode (the client's, or a new one);
2. a prefill that fails (connection, a 5xx, 408 or 429, a 200 without
   `kv_transfer_params`) or passes `prefill_timeout_s` is tried once more on
   another prefill pod; one that refuses the request itself (any other 4xx: a
   bad parameter, an unknown model, a prompt too long, which every pod refuses
   alike) is not. When no prefill succeeds, the decode pod does both phases
   (and answers a refused request with the engine's own error);
3. the decode pod (least load, `leastload.choose`) gets the client's body with
   the prefill's `kv_transfer_params`, and its answer (status, headers, body,
   streamed or not) goes back to the client as it comes.
`GET /modelplane/load` (`PD_ROUTER_LOAD_PATH`) is the router's own: the decode pods'
load summed (`pd_router.load`), for the scaler. Every other request goes to a decode
pod unchanged. A decode pod that fails
before its response head (connection, a 5xx, `decode_timeout_s`) is tried once
more on another pod, with the client's own body (the first may have taken the
prefilled blocks); so is a decode that answers 400 about its `kv_transfer_params`
(the blocks could not be fetched: the prefill pod died or they expired), on the
least-loaded pod, which then prefills itself. The handler runs as a task that
the server cancels when the client disconnects; cancelling closes the upstream
connections it holds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from modelplane.httpserver import Reply, Request
from modelplane.wellknown import PD_ROUTER_LOAD_PATH

from pd_router import leastload, load, metrics
from pd_router.body import Buffer, decode_fields, prefill_fields, splice
from pd_router.phase import Phase
from pd_router.prompt import OPENAI_PATHS, prefix_key
from pd_router.prompt import read as read_prompt
from pd_router.upstream import Exchange, UpstreamError

log = logging.getLogger("pd_router.handoff")
HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
     b"trailer", b"upgrade", b"host", b"content-length", b"expect")
)  # fmt: skip
REQUEST_ID = b"x-request-id"
ID_PREFIX = os.urandom(8).hex().encode()
ID_COUNTER = itertools.count()
"""A request without an `X-Request-Id` gets `<random per process>-<counter>` (unique
without a random draw per request)."""
JSON = b"application/json"
OTHER_POD_MAY_ACCEPT = frozenset((408, 429))
"""The 4xx answers of a prefill pod that another pod may not give (timed out, busy)."""
TRY_ANOTHER: Mapping[str, Any] = MappingProxyType({})
"""`_prefill_on`'s answer when another prefill pod may succeed (compared by identity)."""
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Tuning:
    """The router's thresholds (command-line flags)."""

    min_prefill_chars: int = 512
    block_chars: int = 256
    prefix_blocks: int = 4
    balance: float = 1.25
    prefill_timeout_s: float = 30.0
    decode_timeout_s: float = 300.0
    prefill_policy: str = "prefix"
    """`prefix` (affinity, bounded load) or `round-robin` (for comparison)."""


def _forwarded(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k not in HOP_BY_HOP]


def _error(message: str, code: int) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": "router_error", "code": code}}
    ).encode()


class Router:
    def __init__(self, tuning: Tuning, prefill: Phase, decode: Phase) -> None:
        self.tuning = tuning
        self.prefill = prefill
        self.decode = decode
        self._turn = 0
        self._prompt_chars = max(
            tuning.block_chars * tuning.prefix_blocks, tuning.min_prefill_chars
        )
        """How much of a prompt the router reads: enough for its key and its threshold."""

    async def handle(self, request: Request, reply: Reply) -> None:
        if request.method == "POST" and request.path in OPENAI_PATHS:
            await self._openai(request, reply)
        elif request.path == PD_ROUTER_LOAD_PATH:
            await self._load(request, reply)
        else:
            body = request.chunks
            await self._decode(
                request, reply, body, body, _forwarded(request.raw_headers), "passthrough"
            )

    async def _load(self, request: Request, reply: Reply) -> None:
        if request.method not in ("GET", "HEAD"):
            message = _error(f"{PD_ROUTER_LOAD_PATH} answers GET only", 405)
            await reply.whole(405, message, JSON, [(b"allow", b"GET, HEAD")])
            return
        decode = self.decode
        summed = load.decode_load(decode.addresses, decode.in_flight, decode.reported)
        await reply.whole(200, load.exposition(summed), PROMETHEUS_TEXT)

    async def _openai(self, request: Request, reply: Reply) -> None:
        began = time.perf_counter()
        raw = request.body
        given = request.header(REQUEST_ID)
        request_id = given or b"%s-%x" % (ID_PREFIX, next(ID_COUNTER))
        headers = [*_forwarded(request.raw_headers), *([] if given else [(REQUEST_ID, request_id)])]
        # The prompt text is never longer than the body (each character, each newline
        # between messages, comes from at least one byte): a body shorter than the
        # threshold is read only to know it is an object.
        wanted = self._prompt_chars if len(raw) >= self.tuning.min_prefill_chars else 0
        head = read_prompt(request.path, raw, wanted)
        if head is None:  # not a JSON object: the engine names what is wrong with it
            await self._decode(request, reply, [raw], [raw], headers, "decode_only")
            return
        text = head.text
        params: Mapping[str, Any] | None = None
        if len(text) < self.tuning.min_prefill_chars:
            metrics.child(metrics.PREFILL_SKIPPED, "short_prompt").inc()
        elif not self.prefill.addresses:
            metrics.child(metrics.PREFILL_SKIPPED, "no_prefill_pod").inc()
        else:
            key = prefix_key(text, self.tuning.block_chars, self.tuning.prefix_blocks)
            body = splice(raw, head.empty, prefill_fields(request.path))
            params = await self._prefill(request.target, key, body, headers, began)
            if params is None:
                metrics.child(metrics.PREFILL_SKIPPED, "prefill_failed").inc()
        if params is None:
            metrics.DECISION_SECONDS.observe(time.perf_counter() - began)
            await self._decode(request, reply, [raw], [raw], headers, "decode_only")
            return
        handed = splice(raw, head.empty, decode_fields(params))
        await self._decode(request, reply, handed, [raw], headers, "prefill_decode")

    async def _prefill(
        self,
        target: bytes,
        key: int,
        body: list[Buffer],
        headers: list[tuple[bytes, bytes]],
        began: float,
    ) -> Mapping[str, Any] | None:
        """The prefill's `kv_transfer_params`, or None when no prefill pod gave them."""
        tried: list[str] = []
        for attempt in range(2):
            if self.tuning.prefill_policy == "round-robin":
                self._turn += 1
                choice = self.prefill.ring.rotate(self._turn, tried)
            else:
                choice = self.prefill.ring.choose(
                    key, self.prefill.in_flight, self.tuning.balance, tried
                )
            if choice is None:
                return None
            if attempt:
                metrics.child(metrics.RETRIES, "prefill").inc()
            else:
                metrics.DECISION_SECONDS.observe(time.perf_counter() - began)
            metrics.child(metrics.PREFIX_CHOICES, "owner" if choice.owner else "spilled").inc()
            params = await self._prefill_on(choice.pod, target, body, headers)
            if params is not TRY_ANOTHER:
                return params
            tried.append(choice.pod)
        return None

    async def _prefill_on(
        self, address: str, target: bytes, body: list[Buffer], headers: list[tuple[bytes, bytes]]
    ) -> Mapping[str, Any] | None:
        """The `kv_transfer_params` of a prefill on `address`; `TRY_ANOTHER` when another pod
        may do better (a failure, a timeout, a busy pod), None when the pod refused the
        request itself (a 4xx other than `OTHER_POD_MAY_ACCEPT`)."""
        began = time.perf_counter()
        exchange: Exchange | None = None
        with self.prefill.busy(address) as upstream:
            try:
                async with asyncio.timeout(self.tuning.prefill_timeout_s):
                    exchange = await upstream.open(b"POST", target, headers, body)
                    answer = await exchange.read()
            except (UpstreamError, TimeoutError) as error:
                log.warning(
                    "prefill failed",
                    extra={"fields": {"pod": address, "error": str(error) or "timed out"}},
                )
                return TRY_ANOTHER
            finally:
                if exchange is not None:
                    exchange.close()
        metrics.child(metrics.UPSTREAM_SECONDS, "prefill").observe(time.perf_counter() - began)
        params = _kv_params(answer) if exchange.status == 200 else None
        if params is None:
            log.warning(
                "prefill refused",
                extra={"fields": {"pod": address, "status": exchange.status,
                                  "answer": answer[:300].decode("utf-8", "replace")}},
            )  # fmt: skip
        if params is None and not _request_refused(exchange.status):
            return TRY_ANOTHER
        return params

    async def _decode(
        self,
        request: Request,
        reply: Reply,
        body: Sequence[Buffer],
        retry_body: Sequence[Buffer],
        headers: list[tuple[bytes, bytes]],
        route: str,
    ) -> None:
        tried: list[str] = []
        decode = self.decode
        for attempt in range(2):
            self._turn += 1
            address = leastload.choose(
                decode.addresses, decode.in_flight, decode.reported, self._turn, tried
            )
            if address is None:
                break
            if attempt:
                metrics.child(metrics.RETRIES, "decode").inc()
            last = attempt == 1 or len(decode.addresses) - len(tried) <= 1
            with decode.busy(address) as upstream:
                began = time.perf_counter()
                exchange: Exchange | None = None
                try:
                    async with asyncio.timeout(self.tuning.decode_timeout_s):
                        exchange = await upstream.open(
                            request.method.encode(),
                            request.target,
                            headers,
                            body if not attempt else retry_body,
                        )
                except (UpstreamError, TimeoutError) as error:
                    log.warning(
                        "decode failed before its answer",
                        extra={"fields": {"pod": address, "error": str(error) or "timed out"}},
                    )
                    tried.append(address)
                    continue
                try:
                    metrics.child(metrics.UPSTREAM_SECONDS, "decode").observe(
                        time.perf_counter() - began
                    )
                    if exchange.status >= 500 and not last:
                        tried.append(address)
                        continue
                    read = b""
                    if exchange.status == 400 and not attempt and body is not retry_body:
                        read = await exchange.read()
                        if _refused_handoff(read):
                            log.warning(
                                "decode refused the prefilled blocks; decoding without them",
                                extra={"fields": {"pod": address, "answer": read[:300].decode(
                                    "utf-8", "replace")}},
                            )  # fmt: skip
                            continue
                    await _relay(exchange, reply, read)
                finally:
                    exchange.close()
            metrics.child(metrics.REQUESTS, route, str(exchange.status)).inc()
            return
        status = 502 if tried else 503
        message = f"decode pods {', '.join(tried)} failed" if tried else "no ready decode pod"
        metrics.child(metrics.REQUESTS, route, str(status)).inc()
        await reply.whole(status, _error(message, status), JSON)


async def _relay(exchange: Exchange, reply: Reply, read: bytes = b"") -> None:
    """The upstream answer to the client, chunk by chunk as it arrives (after `read`, what
    was already read of it)."""
    await reply.start(exchange.status, _forwarded_response(exchange.headers))
    await reply.send(read)
    async for chunk in exchange.chunks():
        await reply.send(chunk)
    await reply.finish()


def _forwarded_response(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The engine's headers less hop-by-hop ones (its content-length stays: same body)."""
    return [(k, v) for k, v in headers if k == b"content-length" or k not in HOP_BY_HOP]


def _request_refused(status: int) -> bool:
    """Whether a prefill's status refuses the request itself (every pod would)."""
    return 400 <= status < 500 and status not in OTHER_POD_MAY_ACCEPT


def _refused_handoff(answer: bytes) -> bool:
    """Whether a decode engine's 400 is about the `kv_transfer_params` (the prefilled blocks
    could not be fetched: the prefill pod died, or the blocks expired)."""
    try:
        error = json.loads(answer).get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("param") == "kv_transfer_params"


def _kv_params(answer: bytes) -> Mapping[str, Any] | None:
    try:
        doc = json.loads(answer)
    except ValueError:
        return None
    params = doc.get("kv_transfer_params") if isinstance(doc, dict) else None
    return params if isinstance(params, dict) and params else None
