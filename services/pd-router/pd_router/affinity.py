"""Prefill choice: consistent hashing with bounded loads (pure).

Each pod owns `VNODES` points on a 64-bit ring; a prompt's prefix key goes to
the first pod clockwise from it, so prompts sharing a prefix meet the same
pod's prefix cache, and adding or removing a pod moves only the keys it owns.
A hot prefix cannot overload its owner: a pod whose in-flight count would pass
`ceil(balance * (total + 1) / pods)` is skipped for the next pod clockwise
(Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads").

Guarantees: `choose` returns None only when every pod is excluded; the pod it
returns is within its bound unless every candidate is at its bound (then the
least loaded); the same pods, loads and key give the same answer.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

VNODES = 64


def _point(name: str, index: int) -> int:
    digest = hashlib.blake2b(f"{name}#{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Choice:
    pod: str
    owner: bool
    """The key's first pod on the ring (a prefix-cache hit, if the pod still holds it)."""


class Ring:
    def __init__(self, pods: Sequence[str], vnodes: int = VNODES) -> None:
        self.pods = tuple(sorted(set(pods)))
        points = sorted((_point(p, i), p) for p in self.pods for i in range(vnodes))
        self._hashes = [h for h, _ in points]
        self._owners = [p for _, p in points]

    def order(self, key: int) -> list[str]:
        """Every pod once, in ring order from `key`."""
        if not self._owners:
            return []
        start = bisect.bisect_left(self._hashes, key)
        seen: dict[str, None] = {}
        count = len(self._owners)
        for step in range(count):
            seen.setdefault(self._owners[(start + step) % count])
            if len(seen) == len(self.pods):
                break
        return list(seen)

    def rotate(self, turn: int, exclude: Collection[str] = ()) -> Choice | None:
        """Round-robin over the pods instead (no affinity): the baseline to compare with."""
        candidates = [p for p in self.pods if p not in exclude]
        return Choice(candidates[turn % len(candidates)], False) if candidates else None

    def choose(
        self,
        key: int,
        load: Mapping[str, int],
        balance: float,
        exclude: Collection[str] = (),
    ) -> Choice | None:
        candidates = [p for p in self.order(key) if p not in exclude]
        if not candidates:
            return None
        total = sum(load.get(p, 0) for p in self.pods)
        bound = math.ceil(balance * (total + 1) / len(self.pods))
        for index, pod in enumerate(candidates):
            if load.get(pod, 0) + 1 <= bound:
                return Choice(pod, index == 0 and not exclude)
        least = min(candidates, key=lambda p: load.get(p, 0))
        return Choice(least, least == candidates[0] and not exclude)
