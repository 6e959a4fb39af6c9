"""What the scaler knows right now, shared between the event loop and the gRPC threads.

The scrape loop (asyncio) stores the control cluster's objects and the engines'
samples; `Activation.ReportHeld` (a gRPC thread) stores each activator's report;
`ExternalScaler` calls (other gRPC threads) read a consistent copy (`view`) and wait
for a change (`wait_change`), which every store announces. One lock guards it all;
nothing blocks while holding it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from endpoint_manager.scalermetrics import EngineSample, HeldReport, Objects


@dataclass(frozen=True, slots=True)
class View:
    objects: Objects = field(default_factory=Objects)
    samples: Mapping[str, EngineSample] = field(default_factory=dict)
    reports: tuple[HeldReport, ...] = ()
    synced: bool = False
    """Whether the objects came from a listed watch cache (before that, nothing is known)."""


class ScalerState:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._objects = Objects()
        self._samples: dict[str, EngineSample] = {}
        self._reports: dict[str, HeldReport] = {}
        self._synced = False
        self.version = 0
        """Counts the stores; a waiter compares it with the one it last saw."""

    def _bump(self) -> None:
        self.version += 1
        self._changed.notify_all()

    def set_objects(self, objects: Objects, live: set[str]) -> None:
        """The objects now; samples of replicas not in `live` (keys) are forgotten."""
        with self._changed:
            self._objects = objects
            self._synced = True
            for key in [k for k in self._samples if k not in live]:
                del self._samples[key]
            self._bump()

    def set_samples(self, samples: Mapping[str, EngineSample]) -> None:
        with self._changed:
            self._samples.update(samples)
            self._bump()

    def set_report(self, report: HeldReport) -> None:
        """Replace the sender's previous report (a report with no services clears it)."""
        with self._changed:
            if report.services:
                self._reports[report.activator] = report
            else:
                self._reports.pop(report.activator, None)
            self._bump()

    def view(self) -> View:
        with self._changed:
            reports = tuple(self._reports.values())
            return View(self._objects, dict(self._samples), reports, self._synced)

    def wait_change(self, seen: int, timeout_s: float) -> int:
        """Block until a store after version `seen`, or `timeout_s`; the version now."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen, timeout_s)
            return self.version
