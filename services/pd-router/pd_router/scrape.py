"""Reading the decode engines' load from their `/metrics`, every second.

`parse_load` (pure) takes a vLLM Prometheus text page and returns the sum over
its samples of `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc` and
`vllm:num_requests_running` (one sample per served model name); `scrape_forever`
fetches every decode pod's page each `interval_s` through the pod's own
connection pool and stores the result in `Phase.reported`. A pod that does not
answer 200 within the interval keeps no report (it is judged by the router's
in-flight count alone, for the choice and in `pd_router.load`).
"""

from __future__ import annotations

import asyncio
import logging
import math

from pd_router.leastload import EngineLoad
from pd_router.phase import Phase
from pd_router.upstream import UpstreamError

log = logging.getLogger("pd_router.scrape")
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"
RUNNING = "vllm:num_requests_running"


def parse_load(text: str) -> EngineLoad:
    totals = {WAITING: 0.0, KV_USAGE: 0.0, RUNNING: 0.0}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name = line.partition("{")[0].partition(" ")[0]
        if name not in totals:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        if math.isfinite(value):
            totals[name] += value
    return EngineLoad(totals[WAITING], totals[KV_USAGE], totals[RUNNING])


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
    else:
        phase.reported.pop(address, None)


async def scrape_forever(phase: Phase, interval_s: float) -> None:
    while True:
        await asyncio.gather(*(scrape_once(phase, a, interval_s) for a in phase.addresses))
        await asyncio.sleep(interval_s)
