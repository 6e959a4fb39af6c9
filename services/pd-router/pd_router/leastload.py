"""Decode choice: the pod with the least load (pure).

A decode pod's load is the router's own in-flight requests to it plus what the
engine last reported: `vllm:num_requests_waiting` (requests queued behind a
full batch) and `vllm:kv_cache_usage_perc` (0..1; a nearly full KV cache will
preempt), weighted so a full cache counts as `KV_WEIGHT` requests.

Guarantees: `choose` returns None only when every pod is excluded; among equal
loads it rotates with `turn`, so equal pods share the traffic.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

KV_WEIGHT = 4.0


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """What a pod's /metrics said last (`running` is not part of the choice: the router's
    own in-flight count stands for it; it is what `pd_router.load` reports)."""

    waiting: float = 0.0
    kv_usage: float = 0.0
    running: float = 0.0


def score(in_flight: int, reported: EngineLoad | None) -> float:
    if reported is None:
        return float(in_flight)
    return in_flight + reported.waiting + KV_WEIGHT * reported.kv_usage


def choose(
    pods: Sequence[str],
    in_flight: Mapping[str, int],
    reported: Mapping[str, EngineLoad],
    turn: int,
    exclude: Collection[str] = (),
) -> str | None:
    candidates = [p for p in pods if p not in exclude]
    if not candidates:
        return None
    count = len(candidates)
    rotated = [candidates[(turn + i) % count] for i in range(count)]
    return min(rotated, key=lambda p: score(in_flight.get(p, 0), reported.get(p)))
