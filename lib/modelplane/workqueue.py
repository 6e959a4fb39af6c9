"""A per-key work queue with deduplication, delays and per-key backoff (no I/O, no asyncio).

`WorkQueue` holds string keys (what a key names is the service's choice: one
object, or one key for a whole pass). It guarantees:

- deduplication: a key added again while it waits is queued once;
- no key runs concurrently with itself: `pop` hands a key out and marks it
  processing; a key added while processing waits until `done(key)`, then is
  queued once more (so the change that arrived meanwhile is not lost);
- `add_after(key, seconds)`: the key is queued once that time has passed (the
  earliest of several requests wins; an `add` before then queues it at once);
- first in, first out among ready keys.

`Backoff` gives a key's delay after its n-th consecutive failure:
`min(cap, base * 2**(n-1))`, scaled by a factor drawn from
`[1 - jitter, 1]` (never above the cap, never below `(1 - jitter)` of the
exponential delay), from an injectable `random.Random`; `forget` resets a key
after a success.

Time is whatever `clock()` says (monotonic seconds), injected so tests need no
sleeping. The asyncio side (waiting for keys, workers) lives in `modelplane.loop`.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable

Clock = Callable[[], float]


class Backoff:
    """Per-key exponential backoff with jitter."""

    def __init__(
        self,
        base_s: float = 0.1,
        cap_s: float = 60.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.failures: dict[str, int] = {}

    def bound(self, failures: int) -> float:
        """The delay before jitter after `failures` consecutive failures (at least 1)."""
        return float(min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, 64)))

    def failure(self, key: str) -> float:
        """Count one more failure of `key`; return how long to wait before retrying it."""
        count = self.failures.get(key, 0) + 1
        self.failures[key] = count
        return self.bound(count) * self.rng.uniform(1 - self.jitter, 1)

    def forget(self, key: str) -> None:
        self.failures.pop(key, None)

    def retries(self, key: str) -> int:
        return self.failures.get(key, 0)


class WorkQueue:
    """Keys waiting to be worked on, at most once each, never one key twice at a time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._ready: deque[str] = deque()
        self._dirty: set[str] = set()  # queued (in _ready, or back in once done)
        self._processing: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []  # (when, order, key) heap
        self._due: dict[str, float] = {}  # key -> earliest time it is due
        self._order = itertools.count()
        self.adds = 0

    def add(self, key: str) -> bool:
        """Queue `key` now; False when it was already waiting (deduplicated)."""
        self._due.pop(key, None)
        if key in self._dirty:
            return False
        self._dirty.add(key)
        self.adds += 1
        if key not in self._processing:
            self._ready.append(key)
        return True

    def add_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def add_after(self, key: str, seconds: float) -> None:
        """Queue `key` once `seconds` have passed (at once when not positive)."""
        if seconds <= 0:
            self.add(key)
            return
        when = self.clock() + seconds
        if key in self._due and self._due[key] <= when:
            return
        self._due[key] = when
        heapq.heappush(self._delayed, (when, next(self._order), key))

    def _promote(self) -> None:
        now = self.clock()
        while self._delayed and self._delayed[0][0] <= now:
            when, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) == when:
                self.add(key)

    def pop(self) -> str | None:
        """The next ready key, now marked processing; None when none is ready."""
        self._promote()
        if not self._ready:
            return None
        key = self._ready.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        """`key`'s work finished; if it was added meanwhile, it is queued again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._ready.append(key)

    def next_due_in(self) -> float | None:
        """Seconds until the earliest delayed key is due (0 when one is); None when none."""
        while self._delayed and self._due.get(self._delayed[0][2]) != self._delayed[0][0]:
            heapq.heappop(self._delayed)  # superseded by an earlier time or an add
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - self.clock())

    def depth(self) -> int:
        """Keys ready to be worked on (not those processing or delayed)."""
        self._promote()
        return len(self._ready)

    def busy(self) -> int:
        return len(self._processing)

    def delayed(self) -> int:
        return len(self._due)
