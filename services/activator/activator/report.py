"""Telling the scaler which services have requests held (`Activation.ReportHeld`).

`Reporter.run()` sends the activator's whole picture (`Holding.held`) to
endpoint-manager's scaler port: at once whenever it changes (a request held or
released), and every `interval_s` while any request is held (so the scaler's
15 s staleness rule never drops a live hold, and the oldest wait it sees stays
current). A report with no service clears this activator's earlier one. A call
that fails is logged and the picture is sent again at the next change or tick;
nothing is queued, since each report replaces the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from activator.holding import HeldService

log = logging.getLogger("activator")
DEFAULT_INTERVAL_S = 2.0
CALL_TIMEOUT_S = 5.0


class Sender(Protocol):
    """What the reporter needs of the gRPC stub: `ReportHeld(HeldReport, timeout=...)`."""

    def ReportHeld(self, request: Any, timeout: float) -> Any: ...  # noqa: N802 (gRPC's name)


def report(activator: str, held: Sequence[HeldService]) -> Any:
    """The `HeldReport` message of one picture."""
    from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2

    return activation_pb2.HeldReport(
        activator=activator,
        services=[
            activation_pb2.HeldService(
                namespace=h.namespace,
                service=h.service,
                held=h.held,
                oldest_wait_seconds=h.oldest_wait_s,
            )
            for h in held
        ],
    )


class Reporter:
    def __init__(
        self,
        stub: Sender,
        activator: str,
        picture: Callable[[], Sequence[HeldService]],
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.stub = stub
        self.activator = activator
        self.picture = picture
        self.interval_s = interval_s
        self.changed = asyncio.Event()
        self.sent = 0

    def wake(self) -> None:
        """The picture changed: send it now."""
        self.changed.set()

    async def run(self) -> None:
        last_ok = True
        while True:
            held = self.picture()
            if self.changed.is_set() or held or not last_ok:
                self.changed.clear()
                last_ok = await self._send(held)
            timeout = self.interval_s if held or not last_ok else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.changed.wait()

    async def _send(self, held: Sequence[HeldService]) -> bool:
        try:
            await self.stub.ReportHeld(report(self.activator, held), timeout=CALL_TIMEOUT_S)
        except Exception as error:
            log.warning("report failed", extra={"fields": {"error": repr(error)[:300]}})
            return False
        self.sent += 1
        return True
