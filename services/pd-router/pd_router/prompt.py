"""What the router reads of an OpenAI request body: its prompt text and prefix key (pure).

Guarantees: `prompt_text` never raises on a well-formed JSON object whatever
its fields hold (what it cannot read counts as no text: the engine, not the
router, rejects bad requests); `prefix_key` depends only on the prompt's
first `blocks` complete blocks of `block_chars` characters (the whole prompt
when it is shorter than one block), so prompts sharing that prefix share a
key, in every process (BLAKE2b, not Python's salted `hash`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
OPENAI_PATHS = frozenset((CHAT, COMPLETIONS))


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
        return "\n".join(p if isinstance(p, str) else _token_ids(p) for p in prompt)
    return ""


def _token_ids(ids: object) -> str:
    return " ".join(map(str, ids)) if isinstance(ids, list) else str(ids)


def _content(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones count
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def prefix_key(text: str, block_chars: int, blocks: int) -> int:
    """A 64-bit key of the prompt's leading complete blocks."""
    whole = len(text) // block_chars
    head = text[: block_chars * min(blocks, whole)] if whole else text
    digest = hashlib.blake2b(head.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")
