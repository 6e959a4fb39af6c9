"""Reading the decode engines' load from their `/metrics`, every second.

`parse_load` (pure) takes a vLLM Prometheus text page and returns the sum over
its samples of `vllm:num_requests_waiting` and `vllm:kv_cache_usage_perc`
(one sample per served model name); `scrape_forever` fetches every decode
pod's page each `interval_s` through the pod's own connection pool and stores
the result in `Phase.reported`. A pod that does not answer within the interval
keeps no report (it is judged by the router's in-flight count alone).
"""

from __future__ import annotations

import asyncio
import logging

from pd_router.leastload import EngineLoad
from pd_router.phase import Phase
from pd_router.upstream import UpstreamError

log = logging.getLogger("pd_router.scrape")
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"


def parse_load(text: str) -> EngineLoad:
    waiting = kv_usage = 0.0
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name = line.partition("{")[0].partition(" ")[0]
        if name not in (WAITING, KV_USAGE):
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        if name == WAITING:
            waiting += value
        else:
            kv_usage += value
    return EngineLoad(waiting, kv_usage)


async def scrape_once(phase: Phase, address: str, timeout_s: float) -> None:
    upstream = phase.upstreams.get(address)
    if upstream is None:
        return
    try:
        async with asyncio.timeout(timeout_s):
            exchange = await upstream.open(b"GET", b"/metrics", [], [])
            try:
                text = (await exchange.read()).decode("utf-8", "replace")
            finally:
                exchange.close()
    except (UpstreamError, TimeoutError) as error:
        phase.reported.pop(address, None)
        log.debug("scrape failed", extra={"fields": {"pod": address, "error": str(error)}})
        return
    if exchange.status == 200:
        phase.reported[address] = parse_load(text)


async def scrape_forever(phase: Phase, interval_s: float) -> None:
    while True:
        await asyncio.gather(*(scrape_once(phase, a, interval_s) for a in phase.addresses))
        await asyncio.sleep(interval_s)
