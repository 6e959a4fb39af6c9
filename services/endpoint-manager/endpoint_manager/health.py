"""Bounded health probes of replicas through their cluster's gateway.

`Prober.probe(url)` answers whether `GET url` returned 200. At most `limit`
probes run at once (the rest wait their turn) and each gives up after
`timeout_s`, so a pass with many replicas to probe, or a gateway that hangs,
never opens unbounded connections or stalls the pass for long. When to probe
(and so how probes spread over time) is `decide`'s call, not this module's.
"""

from __future__ import annotations

import asyncio

import httpx

LIMIT = 16
TIMEOUT_S = 2.0


class Prober:
    def __init__(
        self, http: httpx.AsyncClient, limit: int = LIMIT, timeout_s: float = TIMEOUT_S
    ) -> None:
        self.http = http
        self.timeout_s = timeout_s
        self.slots = asyncio.Semaphore(limit)
        self.sent = 0
        """Probes sent since start (for measurements)."""

    async def probe(self, url: str) -> bool:
        async with self.slots:
            self.sent += 1
            try:
                reply = await self.http.get(url, timeout=self.timeout_s)
            except httpx.HTTPError:
                return False
            return reply.status_code == 200
