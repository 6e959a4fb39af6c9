"""One inference request from HTTP to HTTP: checks, KV hand-off, engine time, rendering.

Order of checks, each answered in the route's own error shape: a group worker
refuses (503, naming its leader); an engine not ready refuses (503); the body
must be a JSON object (400); the API's fields (400, naming the field); the
model must be served (404); `kv_transfer_params` must suit the engine's
kv-role (400); a remote prefill's blocks are fetched before anything is
generated (400 naming the producer's host:port and the reason when that fails).
Only then does a response start, so a stream never begins with an error.

Guarantees: non-streaming bodies carry `modelplane_pod` (and
`modelplane_prefill_pod`, `kv_transfer_params` where they apply); a decode
that used a remote prefill answers with header `X-Modelplane-Prefill-Pod`; an
`X-Request-Id` header is echoed and names the answer (`chatcmpl-<id>`, as vLLM does).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

from modelplane.httpserver import Request, Response, json_response

from modelplane_enginesim import sidechannel
from modelplane_enginesim.config import Settings
from modelplane_enginesim.engine import Engine, Job
from modelplane_enginesim.inference import Api, ApiError, Outcome, Prompt, StreamFormat, decide
from modelplane_enginesim.kvtransfer import BlockStore, KvRequest, parse_params, response_params
from modelplane_enginesim.logs import log
from modelplane_enginesim.prefixcache import PrefixCache

FETCH_TIMEOUT_S = 2.0
SSE_HEADERS = [("cache-control", "no-cache")]


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


class Serving:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: BlockStore | None,
        refusal: Callable[[], str | None],
        side_channel_port: int,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.refusal = refusal
        self.side_channel_port = side_channel_port
        self.prefix = PrefixCache(settings.prefix_cache_blocks)

    async def handle(self, api: Api, prefix: str, request: Request) -> Response:
        arrived = self.engine.now()
        given = request.headers.get("x-request-id")
        request_id = prefix + given if given else new_id(prefix)
        headers = [("x-request-id", given or request_id)]
        try:
            refusal = self.refusal()
            if refusal is not None:
                raise ApiError(503, refusal)
            body = _json_object(request.body)
            plan = api.parse(body)
            model = self._model(plan.model)
            kv = parse_params(body.get("kv_transfer_params"))
            self._check_kv(kv, plan.stream, plan.max_tokens)
            outcome = decide(
                plan,
                model,
                self.settings.max_model_len,
                outcome_id=request_id,
                created=int(time.time()),
                single_token=kv is not None and kv.mode == "prefill",
            )
            prefill_pod = await self._fetch(kv) if kv is not None and kv.mode == "decode" else None
        except ApiError as error:
            return json_response(error.status, api.error(error), headers)
        remote = prefill_pod is not None
        job = Job(
            prompt_tokens=outcome.prompt_tokens,
            lengths=outcome.lengths,
            finish=outcome.finish,
            arrived=arrived,
            remote_prefill=remote,
            uncached_tokens=0 if remote else self._uncached(plan.prompts),
        )
        if prefill_pod is not None:
            headers.append(("x-modelplane-prefill-pod", _qualified(prefill_pod)))
        if plan.stream:
            stream = api.stream(outcome, plan.include_usage)
            return Response(
                200,
                b"",
                "text/event-stream; charset=utf-8",
                headers + SSE_HEADERS,
                self._events(job, stream),
            )
        await self.engine.complete(job)
        answer = api.body(outcome)
        answer["modelplane_pod"] = self.settings.pod.as_json()
        if prefill_pod is not None:
            answer["modelplane_prefill_pod"] = prefill_pod
        if kv is not None and kv.mode == "prefill":
            answer["kv_transfer_params"] = self._store(outcome)
        return json_response(200, answer, headers)

    def _model(self, requested: str | None) -> str:
        names = self.settings.served_model_names
        if requested is None:
            return names[0]
        if requested not in names:
            raise ApiError(404, f"The model `{requested}` does not exist.", "model")
        return requested

    def _uncached(self, prompts: tuple[Prompt, ...]) -> int:
        """Prompt tokens to compute: those the prefix cache did not hold (now it does)."""
        cached = sum(self.prefix.admit(p.text) for p in prompts)
        self.engine.metrics.prefix_cache = (self.prefix.queries, self.prefix.hits)
        return sum(p.tokens for p in prompts) - cached

    def _check_kv(self, kv: KvRequest | None, stream: bool, max_tokens: int | None) -> None:
        if kv is None:
            return
        role = self.settings.kv_role
        if kv.mode == "prefill" and not self.settings.produces_kv:
            raise ApiError(
                400,
                f"kv_transfer_params.do_remote_decode: this engine's kv-role is {role}; a "
                "prefill for remote decode needs kv-role producer or both",
                "kv_transfer_params",
            )
        if kv.mode == "decode" and not self.settings.consumes_kv:
            raise ApiError(
                400,
                f"kv_transfer_params.do_remote_prefill: this engine's kv-role is {role}; "
                "decoding a remote prefill needs kv-role consumer or both",
                "kv_transfer_params",
            )
        if kv.mode == "prefill" and stream:
            raise ApiError(400, "stream: a prefill for remote decode answers in one body", "stream")
        if kv.mode == "prefill" and max_tokens != 1:
            raise ApiError(
                400,
                f"max_tokens: a prefill for remote decode generates exactly 1 token, not "
                f"{'no limit' if max_tokens is None else max_tokens}",
                "max_tokens",
            )

    async def _fetch(self, kv: KvRequest) -> dict[str, Any]:
        try:
            answer = await sidechannel.fetch(
                kv.host, kv.port, kv.engine_id, kv.block_ids, FETCH_TIMEOUT_S
            )
        except sidechannel.FetchError as error:
            log("kv_fetch_failed", remote=kv.address, engine_id=kv.engine_id, error=str(error))
            raise ApiError(
                400,
                f"KV transfer from remote prefill {kv.address} failed: {error}",
                "kv_transfer_params",
            ) from None
        pod = answer.get("pod")
        return dict(pod) if isinstance(pod, Mapping) else {"namespace": "", "name": "", "ip": ""}

    def _store(self, outcome: Outcome) -> dict[str, Any]:
        assert self.store is not None  # a producer always has a store
        blocks = self.store.put(outcome.id, outcome.prompt_tokens)
        return response_params(
            self.store.engine_id,
            blocks,
            self.settings.side_channel_host,
            self.side_channel_port,
            outcome.id,
        )

    async def _events(self, job: Job, stream: StreamFormat) -> AsyncGenerator[bytes, None]:
        yield stream.opening()
        tokens = self.engine.tokens(job)
        try:
            async for step in tokens:
                yield stream.step(step)
        finally:
            await tokens.aclose()
        yield stream.closing()


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as error:
        raise ApiError(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "request body must be a JSON object")
    return value


def _qualified(pod: Mapping[str, Any]) -> str:
    return f"{pod.get('namespace', '')}/{pod.get('name', '')}"
