"""The scrape loop against a real engine simulator: what runs and waits there reaches the state,
at most once per replica per interval however often it ticks."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from endpoint_manager.scalermetrics import EngineSample, Objects
from endpoint_manager.scalerstate import ScalerState
from endpoint_manager.scrape import EngineScraper, due

from tests.enginesim.sim import Sim, wait_until

Json = dict[str, Any]


@pytest.fixture(scope="module")
def busy_engine() -> Iterator[Sim]:
    """A simulator with room for one request at a time, holding one running and one waiting."""
    sim = Sim("--served-model-name", "m", "--max-concurrency", "1", "--tpot-ms", "100")
    body = {"model": "m", "prompt": "hello", "max_tokens": 300, "stream": True}

    def send() -> None:
        try:
            with httpx.stream("POST", f"{sim.url}/v1/completions", json=body, timeout=60) as reply:
                for _ in reply.iter_bytes():
                    pass
        except httpx.HTTPError:
            pass  # the simulator stopped at the end of the module

    for _ in range(2):
        threading.Thread(target=send, daemon=True).start()
    one_waiting = re.compile(r"^vllm:num_requests_waiting\{[^}]*\} 1(\.0)?$", re.M)
    found = lambda: one_waiting.search(sim.get("/metrics").text) is not None  # noqa: E731
    assert wait_until(found, timeout=20), sim.log()
    yield sim
    sim.kill()


def replica(name: str, address: str) -> Json:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"deploymentName": "qwen", "clusterName": "east"},
        "status": {"address": address, "conditions": [{"type": "Ready", "status": "True"}]},
    }


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(scraper: EngineScraper, ticks: int = 1) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            scraper.http = http
            for _ in range(ticks):
                await scraper.once()

    asyncio.run(go())


def scraper_of(objects: Objects | None, state: ScalerState, clock: Clock) -> EngineScraper:
    return EngineScraper(httpx.AsyncClient(), state, lambda: objects, every_s=2.0, clock=clock)


def test_the_engines_running_and_waiting_requests_reach_the_state(busy_engine: Sim) -> None:
    state, clock = ScalerState(), Clock()
    objects = Objects({}, [], [replica("qwen-east-0", busy_engine.url)])
    run(scraper_of(objects, state, clock))
    view = state.view()
    assert view.synced
    assert view.samples == {"ml/qwen-east-0": EngineSample(1.0, 1.0, clock.now)}


def test_each_replica_is_scraped_at_most_once_per_interval(busy_engine: Sim) -> None:
    state, clock = ScalerState(), Clock()
    objects = Objects({}, [], [replica("qwen-east-0", busy_engine.url)])
    scraper = scraper_of(objects, state, clock)
    run(scraper, ticks=4)
    assert scraper.sent == 1
    clock.now += 1.9
    run(scraper)
    assert scraper.sent == 1
    clock.now += 0.1
    run(scraper)
    assert scraper.sent == 2


def test_a_replica_that_does_not_answer_prometheus_text_gives_no_sample(busy_engine: Sim) -> None:
    state, clock = ScalerState(), Clock()
    # /v1/models answers JSON, not Prometheus text; port 9 refuses
    objects = Objects(
        {},
        [],
        [replica("json", f"{busy_engine.url}/v1/models?"), replica("closed", "http://127.0.0.1:9")],
    )
    scraper = scraper_of(objects, state, clock)
    run(scraper)
    assert scraper.sent == 2
    assert state.view().samples == {}


def test_nothing_is_stored_before_the_cache_has_listed_and_gone_replicas_are_forgotten() -> None:
    state, clock = ScalerState(), Clock()
    run(scraper_of(None, state, clock))
    assert not state.view().synced
    state.set_samples({"ml/gone": EngineSample(1, 1, 0)})
    run(scraper_of(Objects(), state, clock))
    assert state.view().samples == {}


def test_due_picks_the_never_scraped_and_those_scraped_an_interval_ago() -> None:
    targets = {"a": "u", "b": "u", "c": "u"}
    assert due(targets, {"a": 10.0, "b": 7.9}, 10.0, 2.0) == ["b", "c"]
