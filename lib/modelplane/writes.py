"""A reconcile pass's writes, each on its own: one failed write never stops the others.

`perform(service, kind, writes, log)` runs named writes in order; a write
failing with a transient error is logged with its object and skipped; at the
end `WritesFailedError` names every one that failed (inside
`controllermetrics.reconciling` that counts as a failed reconcile), after all
the others were made. The loop retries what failed
(`service` and `kind` name the pass in its logs).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from modelplane.kube import TRANSIENT

Write = Callable[[], Awaitable[None]]


class WritesFailedError(Exception):
    """Some writes of a pass failed (each named); the others were made."""


async def perform(
    service: str, kind: str, writes: Sequence[tuple[str, Write]], log: logging.Logger
) -> None:
    failed = []
    for what, write in writes:
        try:
            await write()
        except TRANSIENT as error:
            failed.append(f"{what}: {error}")
            log.warning(
                "write failed",
                extra={"fields": {"service": service, "kind": kind, "object": what,
                                  "error": str(error)}},
            )  # fmt: skip
    if failed:
        raise WritesFailedError("; ".join(failed))
