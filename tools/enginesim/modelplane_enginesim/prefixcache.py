"""The engine's prefix cache: an LRU of prompt block hashes, like vLLM's prefix caching (pure).

A prompt's tokens (words, as `generation` counts them) are cut into blocks of
`kvtransfer.BLOCK_SIZE`; block i's hash covers every token up to the end of
block i (a chain), so a block is cached only together with everything before
it. `admit(text)` returns how many of the prompt's tokens were already cached
(whole leading blocks only) and caches all its complete blocks, evicting the
least recently used beyond `capacity` blocks.

Guarantees: a repeated prompt of at least one block finds every complete block
cached; two prompts share cached tokens exactly for their common leading
complete blocks; the cache never holds more than `capacity` blocks; `hits` and
`queries` count tokens (vLLM's `prefix_cache_hits` / `prefix_cache_queries`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from modelplane_enginesim.kvtransfer import BLOCK_SIZE


class PrefixCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.hits = 0
        self.queries = 0
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def admit(self, text: str) -> int:
        """Tokens of `text` found cached; its complete blocks are cached from now on."""
        words = text.split()
        chain = hashlib.blake2b(digest_size=16)
        cached = 0
        missed = False
        for start in range(0, len(words) - BLOCK_SIZE + 1, BLOCK_SIZE):
            chain.update("\0".join(words[start : start + BLOCK_SIZE]).encode() + b"\1")
            key = chain.digest()
            if not missed and key in self._blocks:
                cached += BLOCK_SIZE
                self._blocks.move_to_end(key)
                continue
            missed = True
            if self.capacity:
                self._blocks[key] = None
                self._blocks.move_to_end(key)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)
        self.hits += cached
        self.queries += len(words)
        return cached
