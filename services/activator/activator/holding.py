"""The held requests of every service and the wake-up when its endpoints come (asyncio).

`Holding` keeps the current catalog (`update`, on every watch event) and, per
service, the requests held right now with their start times. `admit` decides,
from the count held and the service's policy, whether one more may wait (pure:
`verdict`); `wait` blocks a held request until the service has a target or its
hold time runs out; `release` forgets it (always called, in a `finally`, so a
client that goes away while held stops counting at once). `held()` is the
picture the scaler is told: per service the count and the oldest wait.
`on_change` callbacks run whenever that picture changes.

Guarantees: a request waiting on a service is woken in the same event-loop turn
as the catalog update that gives the service a target; a service's count never
exceeds its `max_held`; targets are handed out in turn (round-robin).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from activator.catalog import Entry, Policy, ServiceKey, Target

Verdict = Literal["forward", "hold", "refuse", "full", "unknown"]
"""What becomes of a new request: forwarded at once (the service has a target), held,
refused (the service does not hold: 503 at once), full (429), unknown service (404)."""


def verdict(entry: Entry | None, held_now: int) -> Verdict:
    """What becomes of one more request for a service with `held_now` requests held."""
    if entry is None:
        return "unknown"
    if entry.targets:
        return "forward"
    if entry.policy is None:
        return "refuse"
    return "hold" if held_now < entry.policy.max_held else "full"


@dataclass(frozen=True, slots=True)
class HeldService:
    namespace: str
    service: str
    held: int
    oldest_wait_s: float


class Holding:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.entries: Mapping[ServiceKey, Entry] = {}
        self.on_change: list[Callable[[], None]] = []
        self._held: dict[ServiceKey, dict[int, float]] = {}
        self._ready: dict[ServiceKey, asyncio.Event] = {}
        self._turn = itertools.count()

    def update(self, entries: Mapping[ServiceKey, Entry]) -> None:
        """The new catalog; wakes the requests of every service that now has a target."""
        self.entries = entries
        for key, event in list(self._ready.items()):
            entry = entries.get(key)
            if entry is not None and entry.targets:
                event.set()
                del self._ready[key]

    def admit(self, key: ServiceKey) -> tuple[Verdict, int | None]:
        """The request's verdict and, when it is held, its ticket for `wait` and `release`."""
        entry = self.entries.get(key)
        held = self._held.setdefault(key, {})
        found = verdict(entry, len(held))
        if found != "hold":
            if not held:
                del self._held[key]
            return found, None
        ticket = next(self._turn)
        held[ticket] = self.clock()
        self._changed()
        return found, ticket

    async def wait(self, key: ServiceKey, policy: Policy, ticket: int) -> bool:
        """Whether the service got a target before the request's hold time ran out."""
        entry = self.entries.get(key)
        if entry is not None and entry.targets:
            return True
        event = self._ready.setdefault(key, asyncio.Event())
        started = self._held.get(key, {}).get(ticket, self.clock())
        remaining = policy.hold_timeout_s - (self.clock() - started)
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        return True

    def release(self, key: ServiceKey, ticket: int) -> float:
        """Forget a held request; how long it was held."""
        held = self._held.get(key, {})
        started = held.pop(ticket, self.clock())
        if not held:
            self._held.pop(key, None)
        self._changed()
        return self.clock() - started

    def pick(self, key: ServiceKey) -> tuple[Entry, list[Target]] | None:
        """The service's entry and its targets, the next one in turn first; None without any."""
        entry = self.entries.get(key)
        if entry is None or not entry.targets:
            return None
        start = next(self._turn) % len(entry.targets)
        return entry, [*entry.targets[start:], *entry.targets[:start]]

    def held(self) -> list[HeldService]:
        """Per service with requests held: how many and the oldest one's wait."""
        now = self.clock()
        return [
            HeldService(namespace, name, len(tickets), now - min(tickets.values()))
            for (namespace, name), tickets in sorted(self._held.items())
            if tickets
        ]

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()
