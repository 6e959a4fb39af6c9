"""With API keys required, the hop listener is no way around the key check (a real Traefik).

The front door as `tools/bench/stream_bench.py` runs it: one Traefik (entrypoints
`web` and `hop`) on what gateway-config renders with keys required, turned into
file-provider configuration; the key plugin holding one key for every service; a
plain-HTTP simulator reached through the hop (service `bench/plain`), and a
service with a fallback whose tiers are routes on the hop listener
(`bench/failover`). Through `web` the key is checked; straight to the hop port,
the same paths the front door's routes use answer Traefik's own 404 (no route
matched, so no backend was asked) without the token the service routes add, or
with a made-up one, whatever key the client shows.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from gateway_config import keys

from tools.bench import stream_bench
from tools.bench.stream_bench import BENCH_KEY, BODY, HOST, Relay

CHAT = {**BODY, "stream": False}


@pytest.fixture(scope="module")
def front_door() -> Iterator[Relay]:
    with stream_bench.relay(
        ["plain", "failover"], baseline=False, direct=False, keep=False, api_keys=True
    ) as found:
        yield found


def test_the_front_door_checks_the_key(front_door: Relay) -> None:
    for kind in ("plain", "failover"):
        url = front_door.url(kind)
        assert httpx.post(url, json=CHAT, timeout=10).status_code == 401
        keyed = {"authorization": f"Bearer {BENCH_KEY}"}
        assert httpx.post(url, json=CHAT, headers=keyed, timeout=10).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/_hop/bench/plain/plain/v1/chat/completions", "/_tier/0/bench/failover/v1/chat/completions"],
)
def test_the_hop_listener_answers_only_the_front_doors_own_routes(
    front_door: Relay, path: str
) -> None:
    url = f"http://{HOST}:{front_door.hop}{path}"
    asked = [
        {},
        {"authorization": f"Bearer {BENCH_KEY}"},
        {keys.HOP_HEADER: "0" * 32, "x-api-key": BENCH_KEY},
    ]
    for headers in asked:
        answer = httpx.post(url, json=CHAT, headers=headers, timeout=10)
        assert answer.status_code == 404, (headers, answer.text)
        assert answer.text == "404 page not found\n"  # Traefik's own: no route matched
    # the same path with the token the service routes send is routed: the 404s above are the
    # guard's, not a wrong path
    token = keys.hop_token([{"metadata": {"name": "default", "uid": "uid-ig"}}])
    routed = httpx.post(url, json=CHAT, headers={keys.HOP_HEADER: token}, timeout=10)
    assert routed.status_code == 200, routed.text
