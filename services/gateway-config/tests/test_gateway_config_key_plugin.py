"""The API key plugin in a real Traefik, as gateway-config renders it (keys required).

One front door (`tools/bench/stream_bench.py`'s Traefik command, the plugin installed in
its working directory) on what `decide` renders for the ModelService `bench/plain` over
a backend that answers every POST with the request headers it received, with two key
Secrets: `BENCH_KEY` for every service, `OTHER_KEY` for `bench/other` only.
gateway-config's key server runs in this process, so the per-key counts the plugin
reports land in this process's Prometheus counter.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from gateway_config import keys
from gateway_config.keyserver import REQUESTS, KeyServer

from tests import headerecho
from tools.bench import stream_bench
from tools.bench.stream_bench import BENCH_KEY, HOST, OTHER_KEY, Relay

SERVICE = "bench/plain"
CASES = [  # headers sent, status, key id the backend sees, counted result
    ({}, 401, None, ""),
    ({"authorization": "Bearer sk-wrong-0123456789abcdef"}, 401, None, ""),
    ({"authorization": f"Basic {BENCH_KEY}"}, 401, None, ""),
    ({"authorization": f"Bearer {OTHER_KEY}"}, 403, None, "other"),
    ({"authorization": f"Bearer {BENCH_KEY}"}, 200, "bench", "bench"),
    ({"authorization": f"bearer {BENCH_KEY}"}, 200, "bench", "bench"),
    ({"x-api-key": BENCH_KEY}, 200, "bench", "bench"),
    ({"x-api-key": BENCH_KEY, keys.KEY_ID_HEADER: "forged"}, 200, "bench", "bench"),
]
RESULTS = {  # (key id, result): how many of CASES count there
    ("", "missing"): 2,  # none, and a key under a scheme other than Bearer
    ("", "unknown"): 1,
    ("other", "forbidden"): 1,
    ("bench", "accepted"): 4,
}


REFUSING = threading.Event()
"""While set, the key server answers every report 401 (as to a plugin with a wrong token)."""


def counts_token() -> str:
    return "not-this-one" if REFUSING.is_set() else stream_bench.counts_token()


def counted() -> dict[tuple[str, str], float]:
    return {(k, r): REQUESTS.labels(k, SERVICE, r)._value.get() for k, r in RESULTS}


@pytest.fixture(scope="module")
def front_door() -> Iterator[str]:
    work = Path(tempfile.mkdtemp(prefix="key-plugin-"))
    echo = ExitStack()
    echo_port = echo.enter_context(headerecho.serving(HOST))
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = KeyServer(counts_token)
    key_port = asyncio.run_coroutine_threadsafe(server.server.start(HOST, 0), loop).result(10)
    relay = Relay(work, baseline=False)
    try:
        url = f"http://echo.bench.test:{echo_port}"
        endpoints = [stream_bench.endpoint("plain", url)]
        objects = stream_bench.rendered_objects(endpoints, "", relay.hop, key_port=key_port)
        config = stream_bench.file_configuration(objects, endpoints, work)
        relay.traefik("front-door", relay.front_port, config, relay.hop)
        relay.wait_ready([])
        yield f"http://{HOST}:{relay.front_port}/{SERVICE}/v1/chat/completions"
    finally:
        relay.stop()
        echo.close()
        asyncio.run_coroutine_threadsafe(server.server.shutdown(1.0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        shutil.rmtree(work)


def send(url: str, headers: dict[str, str], timeout_s: float = 30.0) -> httpx.Response:
    """The answer once Traefik has loaded the route (its 404s before that are not ours)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.post(url, json={"model": "m"}, headers=headers, timeout=10)
        if answer.status_code != 404 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_the_plugin_answers_by_key_strips_the_key_and_reports_counts(front_door: str) -> None:
    url, before = front_door, counted()
    for headers, status, key_id, _ in CASES:
        answer = send(url, headers)
        assert answer.status_code == status, (headers, answer.text)
        if status == 200:
            seen = answer.json()  # what the backend received
            assert seen[keys.KEY_ID_HEADER.lower()] == key_id
            assert "authorization" not in seen and "x-api-key" not in seen
            assert keys.HOP_HEADER.lower() not in seen
            continue
        assert answer.headers["content-type"] == "application/json"
        assert answer.text == keys.refusal(status, SERVICE)
        assert BENCH_KEY not in answer.text and OTHER_KEY not in answer.text
    deadline = time.monotonic() + 4 * keys.COUNTS_SECONDS + 10
    wanted = {label: before[label] + n for label, n in RESULTS.items()}
    while counted() != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert counted() == wanted


def test_counts_a_report_could_not_deliver_come_with_a_later_report(front_door: str) -> None:
    url, accepted = front_door, ("bench", "accepted")
    send(url, {"x-api-key": BENCH_KEY})  # the route loaded; its count delivered below
    deadline = time.monotonic() + 4 * keys.COUNTS_SECONDS + 10
    while time.monotonic() < deadline:  # nothing pending from earlier requests
        before = counted()[accepted]
        time.sleep(keys.COUNTS_SECONDS + 0.5)
        if counted()[accepted] == before:
            break
    REFUSING.set()
    try:
        for _ in range(3):
            assert send(url, {"authorization": f"Bearer {BENCH_KEY}"}).status_code == 200
        time.sleep(2 * keys.COUNTS_SECONDS + 1)  # at least one report refused meanwhile
        assert counted()[accepted] == before
    finally:
        REFUSING.clear()
    deadline = time.monotonic() + 4 * keys.COUNTS_SECONDS + 10
    while counted()[accepted] != before + 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert counted()[accepted] == before + 3
