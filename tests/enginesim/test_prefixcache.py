"""The prefix cache: which prompt tokens count as cached, and what that does to the first token."""

from __future__ import annotations

import asyncio
import socket

import pytest
from modelplane_enginesim.engine import Engine, Job
from modelplane_enginesim.metrics import Metrics
from modelplane_enginesim.prefixcache import PrefixCache

from tests.enginesim.sim import Sim, wait_until


def words(count: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(count))


def test_a_repeated_prompt_finds_its_complete_blocks() -> None:
    cache = PrefixCache(100)
    assert cache.admit(words(40)) == 0
    assert cache.admit(words(40)) == 32  # blocks of 16: the last 8 words are no block
    assert (cache.queries, cache.hits) == (80, 32)


def test_prompts_share_their_common_leading_blocks_only() -> None:
    cache = PrefixCache(100)
    cache.admit(words(48))
    assert cache.admit(words(20) + " " + words(28, "x")) == 16
    # The same words after a different first block are not cached: a block covers its past.
    assert cache.admit("other " + words(47)) == 0


def test_the_least_recently_used_blocks_go_first() -> None:
    cache = PrefixCache(4)
    cache.admit(words(32, "a"))  # 2 blocks
    cache.admit(words(32, "b"))  # 2 more: full
    cache.admit(words(32, "a"))  # a used again
    cache.admit(words(32, "c"))  # evicts b's 2 blocks
    assert len(cache) == 4
    assert cache.admit(words(32, "a")) == 32
    assert cache.admit(words(32, "b")) == 0
    assert PrefixCache(0).admit(words(32)) == 0


def test_the_first_token_waits_for_the_uncached_tokens_only() -> None:
    metrics = Metrics("m", 4)

    async def scenario() -> None:
        engine = Engine(metrics, 4, 0.001, 0.0, 0.0005, clock=lambda: 0.0)
        await engine.complete(Job(64, (1,), ("length",), arrived=0.0, uncached_tokens=64))
        await engine.complete(Job(64, (1,), ("length",), arrived=0.0, uncached_tokens=16))

    asyncio.run(scenario())
    # With a clock that stands still, each first token is due exactly at its model time.
    assert metrics.ttft.sum == pytest.approx((0.001 + 64 * 0.0005) + (0.001 + 16 * 0.0005))


def _metric(sim: Sim, name: str) -> float:
    for line in sim.get("/metrics").text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}")


def test_the_engine_reports_prefix_cache_queries_and_hits() -> None:
    sim = Sim("--ttft-ms", "0", "--tpot-ms", "0", "--prefill-ms-per-token", "1")
    try:
        for _ in range(2):
            answer = sim.post("/v1/completions", {"prompt": words(40), "max_tokens": 1})
            assert answer.status_code == 200
        assert _metric(sim, "vllm:prefix_cache_queries_total") == 80
        assert _metric(sim, "vllm:prefix_cache_hits_total") == 32
        # The first computed 40 tokens (>= 40 ms), the second 8.
        assert _metric(sim, "vllm:time_to_first_token_seconds_sum") >= 0.048
    finally:
        sim.stop()


def test_a_client_that_hangs_up_aborts_its_request() -> None:
    sim = Sim("--ttft-ms", "60000")
    try:
        body = b'{"prompt": "wait for it", "max_tokens": 2}'
        head = f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        with socket.create_connection((sim.host, sim.port)) as raw:
            raw.sendall(head.encode() + body)
            assert wait_until(lambda: _metric(sim, "vllm:num_requests_running") == 1)
        assert wait_until(lambda: _metric(sim, "vllm:num_requests_running") == 0)
        aborted = [line for line in sim.get("/metrics").text.splitlines()
                   if line.startswith('vllm:request_success_total{finished_reason="abort"')]  # fmt: skip
        assert aborted and aborted[0].endswith(" 1.0"), aborted
    finally:
        sim.stop()
