"""Anthropic's Messages API: parsing and rendering (pure).

Guarantees: `model`, `max_tokens` and `messages` are required, as Anthropic
requires them; the body and the event stream (`message_start`,
`content_block_start`, `ping`, one `content_block_delta` per token,
`content_block_stop`, `message_delta` with the stop reason and output tokens,
`message_stop`) are what the official `anthropic` SDK reads; stop reasons are
`max_tokens` or `end_turn`. Errors have the shape
`{"type": "error", "error": {"type", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane_enginesim.generation import count_tokens
from modelplane_enginesim.inference import (
    ApiError,
    Outcome,
    Plan,
    Prompt,
    field_bool,
    field_int,
    field_str,
    sse,
)
from modelplane_enginesim.openai_api import dumps

ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    500: "api_error",
    503: "api_error",
}
STOP_REASONS = {"length": "max_tokens", "stop": "end_turn"}


def _text(content: object, where: str) -> str:
    """The text of a string or of a list of content blocks (non-text blocks count as empty)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, block in enumerate(content):
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                raise ApiError(400, f"{where}[{j}]: must be a content block with a type", where)
            if block["type"] == "text":
                if not isinstance(block.get("text"), str):
                    raise ApiError(400, f"{where}[{j}].text: must be a string", where)
                texts.append(block["text"])
            elif block["type"] == "tool_result" and isinstance(block.get("content"), str):
                texts.append(block["content"])
        return "\n".join(texts)
    raise ApiError(400, f"{where}: must be a string or a list of content blocks", where)


class MessagesApi:
    """`POST /v1/messages`."""

    def parse(self, body: Mapping[str, Any]) -> Plan:
        model = field_str(body, "model", required=True)
        max_tokens = field_int(body, "max_tokens", required=True)
        messages = body.get("messages")
        if messages is None:
            raise ApiError(400, "messages: field required", "messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages: must be a non-empty list", "messages")
        lines, tokens = [], 0
        if body.get("system") is not None:
            system = _text(body["system"], "system")
            lines.append(f"system: {system}")
            tokens += count_tokens(system)
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping):
                raise ApiError(400, f"messages[{i}]: must be an object", "messages")
            role = message.get("role")
            if not isinstance(role, str) or not role:
                raise ApiError(400, f"messages[{i}].role: field required", "messages")
            if "content" not in message:
                raise ApiError(400, f"messages[{i}].content: field required", "messages")
            text = _text(message["content"], f"messages[{i}].content")
            lines.append(f"{role}: {text}")
            tokens += count_tokens(text)
        return Plan(
            model=model,
            prompts=(Prompt("\n".join(lines), tokens),),
            max_tokens=max_tokens,
            stream=field_bool(body, "stream"),
        )

    def body(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "id": outcome.id,
            "type": "message",
            "role": "assistant",
            "model": outcome.model,
            "content": [{"type": "text", "text": outcome.text(0)}],
            "stop_reason": STOP_REASONS[outcome.finish[0]],
            "stop_sequence": None,
            "usage": {
                "input_tokens": outcome.prompt_tokens,
                "output_tokens": outcome.completion_tokens,
            },
        }

    def stream(self, outcome: Outcome, include_usage: bool) -> MessagesStream:
        return MessagesStream(outcome)

    def error(self, error: ApiError) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": ERROR_TYPES.get(error.status, "api_error"), "message": error.message},
        }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return sse(dumps({"type": kind, **data}), event=kind)


class MessagesStream:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def opening(self) -> bytes:
        o = self.outcome
        message: dict[str, Any] = {
            "id": o.id,
            "type": "message",
            "role": "assistant",
            "model": o.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": o.prompt_tokens, "output_tokens": 0},
        }
        return (
            _event("message_start", {"message": message})
            + _event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            + _event("ping", {})
        )

    def step(self, step: int) -> bytes:
        delta = {"type": "text_delta", "text": self.outcome.token(0, step)}
        return _event("content_block_delta", {"index": 0, "delta": delta})

    def closing(self) -> bytes:
        o = self.outcome
        return (
            _event("content_block_stop", {"index": 0})
            + _event(
                "message_delta",
                {
                    "delta": {"stop_reason": STOP_REASONS[o.finish[0]], "stop_sequence": None},
                    "usage": {"output_tokens": o.completion_tokens},
                },
            )
            + _event("message_stop", {})
        )
