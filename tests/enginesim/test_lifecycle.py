"""The simulator over time: model loading, the concurrency limit, and stopping on SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import httpx
import pytest

from tests.enginesim.sim import Sim, wait_until

CHAT = {"messages": [{"role": "user", "content": "count slowly"}], "ignore_eos": True}


def _gauge(sim: Sim, name: str) -> float:
    for line in sim.get("/metrics").text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(name)


def test_health_is_503_until_the_startup_delay_has_passed() -> None:
    sim = Sim("--startup-delay-ms", "600")
    try:
        early = sim.get("/health")
        assert early.status_code == 503
        assert "loading model" in early.text
        assert early.headers["x-modelplane-pod-ip"] == "127.0.0.1"
        refused = sim.post("/v1/completions", {"prompt": "hi"})
        assert refused.status_code == 503
        assert "not ready" in refused.json()["error"]["message"]
        assert wait_until(lambda: sim.get("/health").status_code == 200, timeout=3)
        assert time.monotonic() - sim.began >= 0.6
        assert sim.post("/v1/completions", {"prompt": "hi"}).status_code == 200
    finally:
        sim.stop()


def test_requests_beyond_max_concurrency_wait() -> None:
    sim = Sim("--max-concurrency", "1", "--ttft-ms", "0", "--tpot-ms", "50")
    finished: dict[str, float] = {}

    def call(name: str) -> None:
        with httpx.Client(base_url=sim.url, timeout=10) as client:
            client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 12})
        finished[name] = time.monotonic()

    try:
        began = time.monotonic()
        first = threading.Thread(target=call, args=("first",))
        first.start()
        assert wait_until(lambda: _gauge(sim, "vllm:num_requests_running") == 1)
        second = threading.Thread(target=call, args=("second",))
        second.start()
        assert wait_until(lambda: _gauge(sim, "vllm:num_requests_waiting") == 1)
        assert _gauge(sim, "vllm:num_requests_running") == 1
        assert _gauge(sim, "vllm:kv_cache_usage_perc") == 1.0
        first.join()
        second.join()
        # 11 gaps of 50 ms each, one request after the other
        assert finished["second"] - began >= 2 * 0.55
        assert _gauge(sim, "vllm:num_requests_waiting") == 0
        assert _gauge(sim, "vllm:num_requests_running") == 0
    finally:
        sim.stop()


STOPS = [
    # (case, tokens at 50 ms, stream completes, most seconds from signal to exit)
    ("in-flight stream finishes", 10, True, 1.5),
    ("stream past the grace period is cut", 200, False, 3.5),
]


@pytest.mark.parametrize(
    ("tokens", "completes", "within"), [c[1:] for c in STOPS], ids=[c[0] for c in STOPS]
)
def test_sigterm_drains_then_exits_zero(tokens: int, completes: bool, within: float) -> None:
    sim = Sim("--ttft-ms", "0", "--tpot-ms", "50")
    received: list[str] = []
    started = threading.Event()

    def stream() -> None:
        body: dict[str, Any] = {**CHAT, "max_tokens": tokens, "stream": True}
        try:
            with (
                httpx.Client(base_url=sim.url, timeout=10) as client,
                client.stream("POST", "/v1/chat/completions", json=body) as response,
            ):
                for line in response.iter_lines():
                    received.append(line)
                    started.set()
        except httpx.HTTPError:
            received.append("<cut>")

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(5)
    signalled = time.monotonic()
    sim.process.send_signal(signal.SIGTERM)
    assert sim.process.wait(5) == 0
    assert time.monotonic() - signalled < within
    reader.join(5)
    assert ("data: [DONE]" in received) is completes
    sim.wait_log("event=stopped")
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.url + "/health", timeout=1)


def test_a_test_can_declare_the_engine_unhealthy_and_healthy_again() -> None:
    sim = Sim()
    try:
        assert sim.get("/health").status_code == 200
        assert sim.post("/simulator/health", {"healthy": False}).json() == {"healthy": False}
        down = sim.get("/health")
        assert (down.status_code, down.text) == (
            503,
            "declared unhealthy through POST /simulator/health\n",
        )
        assert sim.post("/v1/completions", {"prompt": "still serving"}).status_code == 503
        bad = sim.post("/simulator/health", {"healthy": "no"})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "healthy"
        assert sim.post("/simulator/health", {"healthy": True}).status_code == 200
        assert sim.get("/health").status_code == 200
    finally:
        sim.stop()
