"""The activator's Prometheus metrics (served on the status address's `/metrics`).

Names start with `modelplane_activator_`; `service` is `<namespace>/<name>`;
`outcome` is `forwarded` (sent to an endpoint, held or not), `expired` (503
past the hold time), `full` (429), `refused` (503, the service does not hold),
`unknown` (404) or `unreachable` (502).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from activator.holding import HeldService

WAIT_BUCKETS = (
    0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
)  # fmt: skip

HELD_SECONDS = Histogram(
    "modelplane_activator_held_seconds",
    "How long each held request waited for a Ready endpoint (forwarded or not).",
    ["service"],
    buckets=WAIT_BUCKETS,
)
REQUESTS = Counter(
    "modelplane_activator_requests",
    "Requests the activator answered, by service and outcome.",
    ["service", "outcome"],
)
HELD = Gauge(
    "modelplane_activator_held",
    "Requests held right now, by service.",
    ["service"],
)


class HeldGauge:
    """Keeps `modelplane_activator_held` equal to a holding picture (services back at 0 too)."""

    def __init__(self) -> None:
        self.shown: set[str] = set()

    def show(self, held: Sequence[HeldService]) -> None:
        now = {f"{h.namespace}/{h.service}": h.held for h in held}
        for name in self.shown - set(now):
            HELD.labels(name).set(0)
        for name, count in now.items():
            HELD.labels(name).set(count)
        self.shown = set(now)
