"""OpenAI's completions and chat completions APIs: parsing and rendering (pure).

Guarantees: bodies and stream chunks carry what the official `openai` SDK
reads (`id`, `object`, `created`, `model`, `choices` with `index` and
`finish_reason`, `usage`); a chat stream is a role chunk per choice, one
content chunk per token, a finish chunk per choice, an optional usage chunk
(`stream_options.include_usage`), then `data: [DONE]`. Errors have the shape
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from modelplane_enginesim.generation import count_tokens
from modelplane_enginesim.inference import (
    ApiError,
    Outcome,
    Plan,
    Prompt,
    check_n,
    field_bool,
    field_int,
    field_str,
    sse,
)

ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    413: "BadRequestError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}
DONE = b"data: [DONE]\n\n"
COMPLETIONS_DEFAULT_MAX_TOKENS = 16


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_body(error: ApiError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": ERROR_TYPES.get(error.status, "InternalServerError"),
            "param": error.param,
            "code": error.status,
        }
    }


def stream_options(body: Mapping[str, Any]) -> bool:
    """Whether the stream ends with a usage chunk."""
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, Mapping):
        raise ApiError(400, "stream_options: must be an object", "stream_options")
    return field_bool(options, "include_usage")


def _prompts(value: object) -> tuple[Prompt, ...]:
    """`prompt`: a string, a list of strings, a list of token ids, or a list of those lists."""
    if isinstance(value, str):
        return (Prompt(value, count_tokens(value)),)
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return tuple(Prompt(v, count_tokens(v)) for v in value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return (_token_ids(value),)
        if all(isinstance(v, list) and v for v in value):
            prompts = [_token_ids(v) for v in value]
            return tuple(prompts)
    raise ApiError(
        400, "prompt: must be a string, a list of strings or a list of token ids", "prompt"
    )


def _token_ids(ids: list[Any]) -> Prompt:
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ApiError(400, "prompt: token id lists must hold integers only", "prompt")
    return Prompt(" ".join(str(i) for i in ids), len(ids))


def _message_text(message: object, index: int) -> tuple[str, str]:
    """(role, text) of `messages[index]`; list content keeps its text parts."""
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise ApiError(400, f"{where}: must be an object", "messages")
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise ApiError(400, f"{where}.role: field required", "messages")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return role, content or ""
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise ApiError(400, f"{where}.content[{j}]: must be a typed part", "messages")
            if part["type"] == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise ApiError(400, f"{where}.content[{j}].text: must be a string", "messages")
                texts.append(text)
        return role, "\n".join(texts)
    raise ApiError(400, f"{where}.content: must be a string or a list of parts", "messages")


class CompletionsApi:
    """`POST /v1/completions`."""

    def parse(self, body: Mapping[str, Any]) -> Plan:
        check_n(body)
        if "prompt" not in body:
            raise ApiError(400, "prompt: field required", "prompt")
        max_tokens = field_int(body, "max_tokens")
        return Plan(
            model=field_str(body, "model", required=False),
            prompts=_prompts(body["prompt"]),
            max_tokens=COMPLETIONS_DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            stream=field_bool(body, "stream"),
            include_usage=stream_options(body),
            ignore_eos=field_bool(body, "ignore_eos"),
            leading_space=True,
        )

    def body(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "id": outcome.id,
            "object": "text_completion",
            "created": outcome.created,
            "model": outcome.model,
            "choices": [
                {
                    "index": i,
                    "text": outcome.text(i),
                    "logprobs": None,
                    "finish_reason": outcome.finish[i],
                    "stop_reason": None,
                }
                for i in range(len(outcome.lengths))
            ],
            "usage": outcome.usage(),
        }

    def stream(self, outcome: Outcome, include_usage: bool) -> CompletionsStream:
        return CompletionsStream(outcome, include_usage)

    def error(self, error: ApiError) -> dict[str, Any]:
        return error_body(error)


class CompletionsStream:
    def __init__(self, outcome: Outcome, include_usage: bool) -> None:
        self.outcome = outcome
        self.include_usage = include_usage

    def _chunk(self, choices: list[dict[str, Any]]) -> bytes:
        o = self.outcome
        chunk: dict[str, Any] = {
            "id": o.id,
            "object": "text_completion",
            "created": o.created,
            "model": o.model,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return sse(dumps(chunk))

    def opening(self) -> bytes:
        return b""

    def step(self, step: int) -> bytes:
        o = self.outcome
        out = b""
        for i, length in enumerate(o.lengths):
            if step < length:
                finish = o.finish[i] if step == length - 1 else None
                out += self._chunk(
                    [
                        {
                            "index": i,
                            "text": o.token(i, step),
                            "logprobs": None,
                            "finish_reason": finish,
                        }
                    ]
                )
        return out

    def closing(self) -> bytes:
        if not self.include_usage:
            return DONE
        o = self.outcome
        usage = {
            "id": o.id,
            "object": "text_completion",
            "created": o.created,
            "model": o.model,
            "choices": [],
            "usage": o.usage(),
        }
        return sse(dumps(usage)) + DONE


class ChatApi:
    """`POST /v1/chat/completions`."""

    def parse(self, body: Mapping[str, Any]) -> Plan:
        check_n(body)
        messages = body.get("messages")
        if messages is None:
            raise ApiError(400, "messages: field required", "messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages: must be a non-empty list", "messages")
        lines, tokens = [], 0
        for index, message in enumerate(messages):
            role, text = _message_text(message, index)
            lines.append(f"{role}: {text}")
            tokens += count_tokens(text)
        max_tokens = field_int(body, "max_completion_tokens")
        if max_tokens is None:
            max_tokens = field_int(body, "max_tokens")
        return Plan(
            model=field_str(body, "model", required=False),
            prompts=(Prompt("\n".join(lines), tokens),),
            max_tokens=max_tokens,
            stream=field_bool(body, "stream"),
            include_usage=stream_options(body),
            ignore_eos=field_bool(body, "ignore_eos"),
        )

    def body(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "id": outcome.id,
            "object": "chat.completion",
            "created": outcome.created,
            "model": outcome.model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": outcome.text(i)},
                    "logprobs": None,
                    "finish_reason": outcome.finish[i],
                    "stop_reason": None,
                }
                for i in range(len(outcome.lengths))
            ],
            "usage": outcome.usage(),
        }

    def stream(self, outcome: Outcome, include_usage: bool) -> ChatStream:
        return ChatStream(outcome, include_usage)

    def error(self, error: ApiError) -> dict[str, Any]:
        return error_body(error)


class ChatStream:
    def __init__(self, outcome: Outcome, include_usage: bool) -> None:
        self.outcome = outcome
        self.include_usage = include_usage

    def _chunk(self, index: int, delta: dict[str, str], finish: str | None) -> bytes:
        o = self.outcome
        chunk: dict[str, Any] = {
            "id": o.id,
            "object": "chat.completion.chunk",
            "created": o.created,
            "model": o.model,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return sse(dumps(chunk))

    def opening(self) -> bytes:
        return b"".join(
            self._chunk(i, {"role": "assistant", "content": ""}, None)
            for i in range(len(self.outcome.lengths))
        )

    def step(self, step: int) -> bytes:
        o = self.outcome
        out = b""
        for i, length in enumerate(o.lengths):
            if step < length:
                out += self._chunk(i, {"content": o.token(i, step)}, None)
                if step == length - 1:
                    out += self._chunk(i, {}, o.finish[i])
        return out

    def closing(self) -> bytes:
        if not self.include_usage:
            return DONE
        o = self.outcome
        usage = {
            "id": o.id,
            "object": "chat.completion.chunk",
            "created": o.created,
            "model": o.model,
            "choices": [],
            "usage": o.usage(),
        }
        return sse(dumps(usage)) + DONE
