"""Deterministic token generation and token counting (pure).

Guarantees: a token is a word; the same prompt text always yields the same
words, in every process (the seed is a CRC-32, not Python's salted `hash`); a
prompt's token count is its number of whitespace-separated words; every prompt
has a "natural" answer length between 16 and 64 tokens, where the simulated
model would stop on its own.
"""

from __future__ import annotations

import zlib

VOCABULARY = (
    "the", "model", "serves", "tokens", "across", "a", "fleet", "of", "clusters",
    "while", "gateways", "route", "each", "request", "to", "one", "replica", "that",
    "has", "room", "in", "its", "cache", "and", "answers", "quickly", "with", "words",
    "chosen", "from", "prompt", "simulated", "engine", "prefill", "decode", "blocks",
    "travel", "between", "pods", "leader", "workers", "join", "group", "before", "ready",
    "latency", "stays", "low", "under", "load", "so", "every", "test", "sees", "same",
    "text", "for", "input", "again", "after", "restart", "is", "deterministic", "enough",
)  # fmt: skip
MIN_NATURAL_LENGTH = 16
MAX_NATURAL_LENGTH = 64


def count_tokens(text: str) -> int:
    """The simulator's tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def seed_of(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def natural_length(seed: int) -> int:
    """Where the model would emit end-of-sequence for this prompt."""
    span = MAX_NATURAL_LENGTH - MIN_NATURAL_LENGTH + 1
    return MIN_NATURAL_LENGTH + (seed >> 7) % span


def token_text(seed: int, index: int, leading_space: bool) -> str:
    """Token `index` of the answer to the prompt with this seed.

    The first token of a chat answer has no leading space; completions continue
    the prompt, so every token of theirs has one.
    """
    word = VOCABULARY[(seed + index * 2654435761 + (index * index >> 1)) % len(VOCABULARY)]
    return word if index == 0 and not leading_space else " " + word


def answer_text(seed: int, count: int, leading_space: bool) -> str:
    return "".join(token_text(seed, i, leading_space) for i in range(count))
