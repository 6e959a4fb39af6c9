"""What the router reads of an OpenAI request body: its prompt text and prefix key (pure).

The prompt text is what the engine will prefill: chat messages' `content` (a
string, or the `text` strings of its parts, run together) joined by newlines;
a completion's `prompt` (a string, or a list of strings and token id lists
joined by newlines, token ids as decimal integers joined by spaces). Anything
else (a non-string `text`, a non-integer token id, a message that is not an
object) reads as no text: the engine, not the router, rejects bad requests.

Guarantees: `prompt_text` never raises on a JSON object whatever its fields
hold; `read` gives the same `Head` for a body whichever way it reads it (a full
`json.loads` up to `EXACT_MAX_BYTES`, `scan.scan` above, within the limits the
`scan` module states) and None when the body is not a JSON object;
`prefix_key` depends only on the prompt's first `blocks` complete blocks of
`block_chars` characters (the whole prompt when it is shorter than one block),
so prompts sharing that prefix share a key, in every process (BLAKE2b, not
Python's salted `hash`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pd_router.scan import Head, UnscannableError, scan

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
OPENAI_PATHS = frozenset((CHAT, COMPLETIONS))
EXACT_MAX_BYTES = 64 * 1024
"""Bodies up to this size are parsed in full (cheap, about 0.2 ms); larger ones scanned."""


def read(path: str, data: bytes, limit: int) -> Head | None:
    """The first `limit` characters of the body's prompt text and whether the body is an
    empty object; None when it is not a JSON object."""
    if len(data) > EXACT_MAX_BYTES:
        try:
            return scan(data, path == CHAT, limit)
        except UnscannableError:
            pass
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    return Head(prompt_text(path, doc)[:limit], not doc)


def prompt_text(path: str, body: Mapping[str, Any]) -> str:
    """The text the engine will prefill: the messages' contents, or the prompt(s)."""
    if path == CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return ""
        return "\n".join(_content(m.get("content")) for m in messages if isinstance(m, Mapping))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):  # prompts, or token ids (one list or a list of lists)
        return "\n".join(
            p if isinstance(p, str) else _token_ids(p) if isinstance(p, list) else _token_id(p)
            for p in prompt
        )
    return ""


def _token_ids(ids: list[Any]) -> str:
    return " ".join(map(_token_id, ids))


def _token_id(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def _content(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones count
        return "".join(_text(part) for part in content if isinstance(part, Mapping))
    return ""


def _text(part: Mapping[str, Any]) -> str:
    text = part.get("text")
    return text if isinstance(text, str) else ""


def prefix_key(text: str, block_chars: int, blocks: int) -> int:
    """A 64-bit key of the prompt's leading complete blocks."""
    whole = len(text) // block_chars
    head = text[: block_chars * min(blocks, whole)] if whole else text
    digest = hashlib.blake2b(head.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")
