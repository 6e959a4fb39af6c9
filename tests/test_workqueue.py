"""WorkQueue deduplicates, never hands out a key twice at a time, delays keys by an injected
clock; Backoff grows exponentially to its cap with jitter in known bounds."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from modelplane.workqueue import Backoff, WorkQueue

Step = tuple[str, ...]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def play(steps: list[Step]) -> list[str | None]:
    """Run queue operations; return what each `pop` gave (None: nothing ready)."""
    clock = FakeClock()
    queue = WorkQueue(clock)
    popped: list[str | None] = []
    for op, *args in steps:
        if op == "add":
            queue.add(args[0])
        elif op == "after":
            queue.add_after(args[0], float(args[1]))
        elif op == "tick":
            clock.now += float(args[0])
        elif op == "pop":
            popped.append(queue.pop())
        elif op == "done":
            queue.done(args[0])
    return popped


@dataclass(frozen=True)
class QueueCase:
    name: str
    steps: list[Step]
    popped: list[str | None]


QUEUE_CASES = [
    QueueCase(
        "a key added twice while it waits is handed out once",
        [("add", "a"), ("add", "a"), ("pop",), ("pop",)],
        ["a", None],
    ),
    QueueCase(
        "ready keys come out first in, first out",
        [("add", "b"), ("add", "a"), ("add", "c"), ("pop",), ("pop",), ("pop",)],
        ["b", "a", "c"],
    ),
    QueueCase(
        "a key added while it is processed waits until it is done, then comes out once",
        [
            ("add", "a"),
            ("pop",),
            ("add", "a"),
            ("add", "a"),
            ("pop",),
            ("done", "a"),
            ("pop",),
            ("pop",),
        ],
        ["a", None, "a", None],
    ),
    QueueCase(
        "a key done without being added again is not handed out again",
        [("add", "a"), ("pop",), ("done", "a"), ("pop",)],
        ["a", None],
    ),
    QueueCase(
        "a delayed key waits for its time on the clock",
        [("after", "a", "5"), ("pop",), ("tick", "4.9"), ("pop",), ("tick", "0.1"), ("pop",)],
        [None, None, "a"],
    ),
    QueueCase(
        "an add before a delay is over hands the key out at once and drops the delay",
        [("after", "a", "5"), ("add", "a"), ("pop",), ("done", "a"), ("tick", "10"), ("pop",)],
        ["a", None],
    ),
    QueueCase(
        "of two delays for one key the earlier wins and the key comes out once",
        [
            ("after", "a", "5"),
            ("after", "a", "2"),
            ("tick", "2"),
            ("pop",),
            ("done", "a"),
            ("tick", "5"),
            ("pop",),
        ],
        ["a", None],
    ),
    QueueCase(
        "a delay of zero queues the key at once",
        [("after", "a", "0"), ("pop",)],
        ["a"],
    ),
    QueueCase(
        "a key due while it is processed runs again once it is done",
        [
            ("add", "a"),
            ("pop",),
            ("after", "a", "1"),
            ("tick", "1"),
            ("pop",),
            ("done", "a"),
            ("pop",),
        ],
        ["a", None, "a"],
    ),
]


@pytest.mark.parametrize("case", QUEUE_CASES, ids=lambda c: c.name)
def test_the_queue(case: QueueCase) -> None:
    assert play(case.steps) == case.popped


def test_adds_count_keys_queued_not_duplicates_and_the_next_delay_is_reported() -> None:
    clock = FakeClock()
    queue = WorkQueue(clock)
    queue.add("a")
    queue.add("a")
    queue.add("b")
    queue.add_after("c", 3)
    queue.add_after("d", 7)
    assert (queue.adds, queue.depth(), queue.delayed(), queue.next_due_in()) == (2, 2, 2, 3.0)
    clock.now = 5
    assert (queue.depth(), queue.delayed(), queue.next_due_in()) == (3, 1, 2.0)


@dataclass(frozen=True)
class BackoffCase:
    name: str
    base_s: float
    cap_s: float
    keys: list[str]  # one failure each, in order; "-k" forgets k
    delays: Sequence[float]


BACKOFF_CASES = [
    BackoffCase(
        "each failure doubles the delay until the cap, which holds",
        1, 10, ["a"] * 7, [1, 2, 4, 8, 10, 10, 10],
    ),
    BackoffCase(
        "a success forgets the failures: the next delay starts over",
        0.5, 60, ["a", "a", "a", "-a", "a"], [0.5, 1, 2, 0.5],
    ),
    BackoffCase(
        "each key backs off on its own",
        1, 60, ["a", "a", "b", "a", "b"], [1, 2, 1, 4, 2],
    ),
    BackoffCase(
        "a long run of failures stays at the cap",
        1, 30, ["a"] * 200, [1, 2, 4, 8, 16] + [30] * 195,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", BACKOFF_CASES, ids=lambda c: c.name)
def test_backoff_without_jitter(case: BackoffCase) -> None:
    backoff = Backoff(case.base_s, case.cap_s, jitter=0, rng=random.Random(1))
    delays = []
    for key in case.keys:
        if key.startswith("-"):
            backoff.forget(key[1:])
        else:
            delays.append(backoff.failure(key))
    assert delays == list(case.delays)


def test_jitter_stays_between_half_and_all_of_the_delay_and_follows_the_seed() -> None:
    def draws(seed: int) -> list[float]:
        backoff = Backoff(1, 8, jitter=0.5, rng=random.Random(seed))
        return [backoff.failure("a") for _ in range(60)]

    bounds = [min(8, 2**n) for n in range(60)]
    first = draws(42)
    assert all(b / 2 <= d <= b for d, b in zip(first, bounds, strict=True))
    assert first == draws(42), "the same seed draws the same delays"
    assert len({round(d / b, 9) for d, b in zip(first, bounds, strict=True)}) > 50, "spread"
    assert first != draws(43)


def test_a_jitter_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.0)
