"""The activator's request handler: hold, refuse or forward one request.

The service comes from the path (`/<namespace>/<name>/...`, which gateway-config
keeps when it routes a service at zero here). Then, by `holding.verdict`: a
service with a Ready endpoint is forwarded at once (a request that raced the
route change); a service that does not hold gets 503 at once; a full queue
429; otherwise the request waits until an endpoint is Ready (then forwarded,
its answer relayed unchanged) or its hold time runs out (503 with
Retry-After). A client that goes away while held is forgotten at once (the
server cancels the handler; `release` runs in `finally`).
"""

from __future__ import annotations

import logging

import httpx
from modelplane.httpserver import Reply, Request

from activator import answers, metrics
from activator.catalog import ServiceKey, service_of
from activator.forward import forward
from activator.holding import Holding

log = logging.getLogger("activator")


class Activator:
    def __init__(self, holding: Holding, client: httpx.AsyncClient) -> None:
        self.holding = holding
        self.client = client

    async def handle(self, request: Request, reply: Reply) -> None:
        key = service_of(request.path)
        if key is None:
            await _refuse(reply, answers.no_service(request.path))
            return
        name = f"{key[0]}/{key[1]}"
        verdict, ticket = self.holding.admit(key)
        if verdict == "unknown":
            await self._refuse(reply, key, "unknown", answers.unknown(*key))
        elif verdict == "refuse":
            await self._refuse(reply, key, "refused", answers.not_holding(*key))
        elif verdict == "full":
            policy = self.holding.entries[key].policy
            bound = policy.max_held if policy is not None else 0
            await self._refuse(reply, key, "full", answers.full(*key, bound))
        elif verdict == "forward":
            await self._forward(request, reply, key, ())
        else:
            assert ticket is not None
            await self._hold(request, reply, key, ticket, name)

    async def _hold(
        self, request: Request, reply: Reply, key: ServiceKey, ticket: int, name: str
    ) -> None:
        policy = self.holding.entries[key].policy
        assert policy is not None
        log.info("held", extra={"fields": {"service": name, "path": request.path}})
        try:
            woken = await self.holding.wait(key, policy, ticket)
        finally:
            waited = self.holding.release(key, ticket)
            metrics.HELD_SECONDS.labels(name).observe(waited)
        header = answers.held_header(waited)
        log.info(
            "released",
            extra={"fields": {"service": name, "waited_s": round(waited, 3), "ready": woken}},
        )
        if not woken:
            found = answers.expired(*key, policy.hold_timeout_s)
            await self._refuse(reply, key, "expired", found, (header,))
            return
        await self._forward(request, reply, key, (header,))

    async def _forward(
        self, request: Request, reply: Reply, key: ServiceKey, extra: answers.Headers
    ) -> None:
        picked = self.holding.pick(key)
        if picked is None:  # withdrawn again in the same instant: as if it expired
            entry = self.holding.entries.get(key)
            hold_s = entry.policy.hold_timeout_s if entry and entry.policy else 0.0
            await self._refuse(reply, key, "expired", answers.expired(*key, hold_s), extra)
            return
        entry, targets = picked
        answered = await forward(self.client, request, reply, entry.prefix, targets, extra)
        outcome = "unreachable" if answered is None else "forwarded"
        metrics.REQUESTS.labels(f"{key[0]}/{key[1]}", outcome).inc()

    async def _refuse(
        self,
        reply: Reply,
        key: ServiceKey,
        outcome: str,
        refusal: answers.Refusal,
        extra: answers.Headers = (),
    ) -> None:
        metrics.REQUESTS.labels(f"{key[0]}/{key[1]}", outcome).inc()
        await _refuse(reply, refusal, extra)


async def _refuse(reply: Reply, refusal: answers.Refusal, extra: answers.Headers = ()) -> None:
    await reply.whole(refusal.status, refusal.body, answers.JSON, [*refusal.headers, *extra])
