"""Request bodies for the engines, spliced from the client's bytes without re-encoding (pure).

The router reads a client's JSON body once (`prompt.read`, for the prompt) and
never serialises it again: the prefill and decode bodies are the client's bytes with
fields appended before the closing brace, as buffer views (no copy of the
client's body). A JSON object whose key repeats takes the last value (Python's
`json`, and so vLLM's request parsing), so an appended field overrides the
client's own.

Guarantees: the result, joined, is a JSON object equal to the client's with the
given fields set; `splice` raises `ValueError` when the bytes do not end with
an object's closing brace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pd_router.prompt import CHAT

Buffer = bytes | bytearray | memoryview

PREFILL_PARAMS = {
    "do_remote_decode": True,
    "do_remote_prefill": False,
    "remote_engine_id": None,
    "remote_block_ids": None,
    "remote_host": None,
    "remote_port": None,
}


def splice(body: bytes, empty: bool, fields: Mapping[str, Any]) -> list[Buffer]:
    """`body` (a JSON object; `empty` when it has no keys) with `fields` set, as buffers."""
    end = body.rfind(b"}")
    if end < 0 or body[end + 1 :].strip():
        raise ValueError("request body does not end with a JSON object's closing brace")
    encoded = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    extra = encoded[1:-1]
    if not extra:
        return [body]
    view = memoryview(body)
    return [view[:end], extra if empty else b"," + extra, view[end:]]


def prefill_fields(path: str) -> dict[str, Any]:
    """What turns a client's request into vLLM's prefill-only request for remote decode."""
    fields: dict[str, Any] = {
        "kv_transfer_params": PREFILL_PARAMS,
        "max_tokens": 1,
        "stream": False,
        "stream_options": None,
    }
    if path == CHAT:
        fields["max_completion_tokens"] = 1
    return fields


def decode_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """What hands a prefilled request to the decode pod: the prefill's answer params."""
    return {"kv_transfer_params": dict(params)}
