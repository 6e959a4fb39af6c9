"""The metrics every reconciling service exports, with the same names everywhere.

- `modelplane_reconcile_total{service,kind,result}`: reconciles by result
  (`ok`, `error`);
- `modelplane_reconcile_errors_total{service,kind}`;
- `modelplane_reconcile_duration_seconds{service,kind}`: a histogram;
- `modelplane_queue_depth{service,kind}`: keys waiting for their reconcile;
- `modelplane_queue_adds_total{service,kind}`: keys ever queued for a reconcile (an add
  of a key already waiting is deduplicated and not counted);
- `modelplane_queue_retries_total{service,kind}`: reconciles that failed and were
  queued again after a backoff;
- `modelplane_queue_work_duration_seconds{service,kind}`: a histogram of the time one
  key's reconcile takes, whatever its result;
- `modelplane_leader{service}`: 1 while this copy holds the lease;
- `modelplane_api_requests_total{server,method,resource}`: requests this process made
  to each API server (`modelplane.kube`; a watch counts once, as method `WATCH`;
  `resource` is the plural, so leader election's `leases` can be told apart).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "modelplane_reconcile_total", "Reconciles by result.", ["service", "kind", "result"]
)
ERRORS = Counter("modelplane_reconcile_errors_total", "Failed reconciles.", ["service", "kind"])
DURATION = Histogram(
    "modelplane_reconcile_duration_seconds",
    "Time one reconcile takes.",
    ["service", "kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge(
    "modelplane_queue_depth", "Objects waiting to be reconciled.", ["service", "kind"]
)
QUEUE_ADDS = Counter(
    "modelplane_queue_adds_total", "Objects queued for a reconcile.", ["service", "kind"]
)
QUEUE_RETRIES = Counter(
    "modelplane_queue_retries_total", "Failed reconciles queued again.", ["service", "kind"]
)
WORK_DURATION = Histogram(
    "modelplane_queue_work_duration_seconds",
    "Time one queued key's reconcile takes.",
    ["service", "kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_REQUESTS = Counter(
    "modelplane_api_requests_total",
    "Requests made to an API server.",
    ["server", "method", "resource"],
)
LEADER = Gauge("modelplane_leader", "1 while this copy holds the leader lease.", ["service"])


@contextmanager
def reconciling(service: str, kind: str) -> Iterator[None]:
    """Count and time one reconcile; an exception counts as an error and propagates."""
    began = time.monotonic()
    failed = RECONCILES.labels(service, kind, "error"), ERRORS.labels(service, kind)
    try:
        yield
    except Exception:
        for counter in failed:
            counter.inc()
        raise
    else:
        RECONCILES.labels(service, kind, "ok").inc()
    finally:
        DURATION.labels(service, kind).observe(time.monotonic() - began)


def queued(service: str, kind: str, count: int) -> Gauge:
    """Record `count` objects queued for this pass; return the depth gauge to count down.

    For a whole-pass service that works through its objects itself (endpoint-manager);
    `ReconcileLoop`'s queue keeps these metrics itself under its own kind."""
    QUEUE_ADDS.labels(service, kind).inc(count)
    depth = QUEUE_DEPTH.labels(service, kind)
    depth.set(count)
    return depth
