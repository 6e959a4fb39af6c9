"""Waiting until something holds: one loop for the tour, the e2e tests and the benchmarks.

`poll` calls `check` until it returns something truthy and returns that, or
raises `TimeoutError` naming what it waited for once `timeout_s` have passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    what: str, check: Callable[[], T | None], timeout_s: float = 60, every_s: float = 0.25
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(every_s)
