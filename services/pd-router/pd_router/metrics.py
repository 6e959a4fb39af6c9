"""The router's Prometheus metrics (served on the status address's `/metrics`).

Names start with `modelplane_pd_router_`. `route` is `prefill_decode` (the
hand-off), `decode_only` (an OpenAI request decoded without a prefill: short
prompt, no prefill pod, or the prefill failed) or `passthrough` (any other
path); `phase` is `prefill` or `decode`. `child(metric, *labels)` is the labelled
series, looked up once per label set (prometheus-client's `labels()` costs a lock
and several calls each time; the router asks on every request).
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
DECISION_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01)

REQUESTS = Counter(
    "modelplane_pd_router_requests",
    "Requests answered, by route and status code.",
    ["route", "code"],
)
RETRIES = Counter(
    "modelplane_pd_router_retries",
    "Upstream requests retried on another pod, by phase.",
    ["phase"],
)
PREFILL_SKIPPED = Counter(
    "modelplane_pd_router_prefill_skipped",
    "OpenAI requests decoded without a remote prefill, by reason "
    "(short_prompt, no_prefill_pod, prefill_failed).",
    ["reason"],
)
PREFIX_CHOICES = Counter(
    "modelplane_pd_router_prefix_choices",
    "Prefill choices: owner (the prefix's own pod on the ring) or spilled (its bound was "
    "reached, or it failed).",
    ["outcome"],
)
UPSTREAM_SECONDS = Histogram(
    "modelplane_pd_router_upstream_seconds",
    "Time from sending an upstream request to its response head (prefill: whole answer).",
    ["phase"],
    buckets=LATENCY_BUCKETS,
)
DECISION_SECONDS = Histogram(
    "modelplane_pd_router_decision_seconds",
    "Time to parse a request and choose its pods.",
    buckets=DECISION_BUCKETS,
)
IN_FLIGHT = Gauge(
    "modelplane_pd_router_in_flight",
    "Requests in flight to each pod.",
    ["phase", "pod"],
    multiprocess_mode="livesum",
)
PODS = Gauge(
    "modelplane_pd_router_pods",
    "Ready pods the router knows, by phase.",
    ["phase"],
    multiprocess_mode="max",
)


@functools.cache
def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, kept (label sets are few: routes, codes, phases, pods)."""
    return metric.labels(*labels)
