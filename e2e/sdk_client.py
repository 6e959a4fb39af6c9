"""Requests a user makes with the official SDKs: `python -m e2e.sdk_client ADDRESS [N]`.

Run inside the fleet's network namespace (through `modelplane localfleet exec`).
Against the ModelService address it sends, with the `openai` SDK, N plain and N
streaming chat completions, and with the `anthropic` SDK, N plain and N
streaming messages; then GET `/health` and `/metrics`. It prints one JSON
object: per kind of call, the serving pod of each response (from the
`X-Modelplane-Pod` header the simulator sets) and whether it had content.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anthropic
import httpx
import openai

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]


def _record(into: list[list[Any]], call: Any) -> None:
    """Append [serving pod, had content] or, when the call failed, ["", False, the error]."""
    try:
        into.append(list(call()))
    except Exception as error:  # reported to the test, which fails naming it
        into.append(["", False, f"{type(error).__name__}: {error}"[:300]])


def _chat(chat: openai.OpenAI, max_tokens: int = 8, exact: bool = False) -> tuple[str, bool]:
    """A chat completion: (serving pod, had content). With `exact` the engine is asked for
    exactly `max_tokens` tokens (vLLM's `ignore_eos`) and the answer counts only when its
    usage says it got them all."""
    raw = chat.chat.completions.with_raw_response.create(
        model="qwen", messages=MESSAGES, max_tokens=max_tokens,
        extra_body={"ignore_eos": True} if exact else None,
    )  # fmt: skip
    reply = raw.parse()
    text = reply.choices[0].message.content or ""
    whole = not exact or (reply.usage is not None and reply.usage.completion_tokens == max_tokens)
    return raw.headers.get("x-modelplane-pod", ""), bool(text) and whole


def _chat_stream(chat: openai.OpenAI, max_tokens: int = 8, exact: bool = False) -> tuple[str, bool]:
    """A streamed chat completion, as `_chat`; with `exact` the stream's closing usage chunk
    must count `max_tokens` tokens."""
    raw = chat.chat.completions.with_raw_response.create(
        model="qwen", messages=MESSAGES, max_tokens=max_tokens, stream=True,
        extra_body={"ignore_eos": True} if exact else None,
        stream_options={"include_usage": True} if exact else openai.omit,
    )  # fmt: skip
    chunks = list(raw.parse())
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    usage = chunks[-1].usage if chunks else None
    whole = not exact or (usage is not None and usage.completion_tokens == max_tokens)
    return raw.headers.get("x-modelplane-pod", ""), len(pieces) > 1 and whole


def _messages(messages: anthropic.Anthropic) -> tuple[str, bool]:
    reply = messages.messages.with_raw_response.create(
        model="qwen", max_tokens=8, messages=MESSAGES
    )
    block = reply.parse().content[0]
    return reply.headers.get("x-modelplane-pod", ""), bool(getattr(block, "text", ""))


def _messages_stream(messages: anthropic.Anthropic) -> tuple[str, bool]:
    with messages.messages.with_streaming_response.create(
        model="qwen", max_tokens=8, messages=MESSAGES, stream=True
    ) as streamed:
        events = [line for line in streamed.iter_lines() if line.startswith("event:")]
        return streamed.headers.get("x-modelplane-pod", ""), "event: message_stop" in events


def main(address: str, count: int) -> dict[str, Any]:
    chat = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0)
    messages = anthropic.Anthropic(base_url=address, api_key="unused", max_retries=0)
    out: dict[str, list[list[Any]]] = {
        k: [] for k in ("chat", "chat_stream", "messages", "messages_stream")
    }
    for _ in range(count):
        _record(out["chat"], lambda: _chat(chat))
        _record(out["chat_stream"], lambda: _chat_stream(chat))
        _record(out["messages"], lambda: _messages(messages))
        _record(out["messages_stream"], lambda: _messages_stream(messages))
    health = httpx.get(f"{address}/health", timeout=10)
    metrics = httpx.get(f"{address}/metrics", timeout=10)
    return {
        **out,
        "health": [health.status_code, health.headers.get("x-modelplane-pod", "")],
        "metrics": [metrics.status_code, "vllm:" in metrics.text],
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4)))
