"""Streams from the simulator relayed by Traefik, as the front door relays them.

One Traefik (the local fleet's command line, with the client-facing entrypoint
`web` and the h2c entrypoint `hop`) serving, from a file, what gateway-config
renders for a ModelService over one plain-HTTP ModelEndpoint: the simulator,
speaking HTTP/1.1 (`gateway_config.decide`, turned into file-provider
configuration by `tools.bench.rendered_routes`). A stream relayed web -> h2c
-> hop -> simulator (the path the h2c hop gives every HTTP/1.1 backend)
arrives whole: the same events as the simulator sends directly, ending in
`data: [DONE]`, for every one of many concurrent streams sent as the OpenAI
SDK sends them (a JSON body with a Content-Length, which is what exposed
golang/go#40747 on a direct HTTP/1.1 relay: rendered without the hop, some of
them are cut). Skipped without the venv's `traefik` binary, except under CI=true.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_config.decide import Settings, Snapshot, decide
from modelplane_localfleet import gateway

from tests.enginesim.sim import Sim, chunks, free_port, parse_sse, stream_text
from tools.bench.rendered_routes import file_config

TRAEFIK = Path(sys.executable).parent / "traefik"
HOST = "127.0.0.1"
BODY = {"model": "qwen", "messages": [{"role": "user", "content": "Tell me more"}],
        "max_tokens": 6, "stream": True}  # fmt: skip
# tools/install puts traefik in the venv; only a local run without it skips (under CI=true a
# missing binary fails the tests)
pytestmark = pytest.mark.skipif(
    not TRAEFIK.exists() and os.environ.get("CI") != "true", reason="no traefik in the venv"
)


def _rendered(sim_port: int, hop: int) -> list[dict[str, Any]]:
    """What gateway-config applies for ModelService `relay/chat` over the simulator, reached
    by the name `sim.relay.test`, with the Gateway at 127.0.0.1 and its hop on `hop`."""
    meta = {"namespace": "relay", "uid": "uid", "labels": {"app": "chat"}}
    endpoint = {
        "kind": "ModelEndpoint",
        "metadata": {"name": "sim", **meta},
        "spec": {"url": f"http://sim.relay.test:{sim_port}", "rewritePath": "/"},
    }
    service = {
        "kind": "ModelService",
        "metadata": {"name": "chat", **meta},
        "spec": {"endpoints": [{"selector": {"matchLabels": {"app": "chat"}}}]},
    }
    gateway_ = {"kind": "Gateway", "metadata": {"name": "modelplane-gateway"},
                "status": {"addresses": [{"type": "IPAddress", "value": HOST}]}}  # fmt: skip
    snapshot = Snapshot(model_services=[service], model_endpoints=[endpoint], gateway=gateway_)
    return list(decide(snapshot, Settings(hop_port=hop), "2026-01-01T00:00:00Z").apply)


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sim, str]]:
    """(the simulator, the URL of its chat completions through web -> h2c -> hop)."""
    work = tmp_path_factory.mktemp("relay")
    sim = Sim("--served-model-name", "qwen", "--ttft-ms", "5", "--tpot-ms", "2")
    web, hop, admin = free_port(), free_port(), free_port()
    objects = _rendered(sim.port, hop)
    hop_routes = [
        o for o in objects if o["kind"] == "HTTPRoute" and o["metadata"]["name"] != "chat"
    ]
    assert len(hop_routes) == 1  # the plain-HTTP endpoint is reached through the hop
    entrypoints = {"http": gateway.WEB_ENTRYPOINT, "hop": gateway.HOP_ENTRYPOINT}
    config = work / "routes.yaml"
    config.write_text(json.dumps(file_config(objects, entrypoints, {"sim.relay.test": HOST}, work)))
    argv = gateway.traefik_command(
        TRAEFIK, address=HOST, web_port=web, admin_port=admin, hop_port=hop,
        https_port=free_port(),  # not 443: a bench or another test may hold it
    )  # fmt: skip
    argv = [a for a in argv if not a.startswith("--providers.kubernetesGateway")]
    argv += [f"--providers.file.filename={config}"]
    log = (work / "traefik.log").open("wb")
    traefik = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{web}/relay/chat/v1/chat/completions"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.post(url, json={**BODY, "stream": False}, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (work / "traefik.log").read_text()[-2000:]
            time.sleep(0.1)
        yield sim, url
    finally:
        traefik.terminate()
        traefik.wait(10)
        sim.stop()


async def _streams(url: str, count: int, concurrency: int) -> list[tuple[int, str]]:
    """(status, body text) of `count` streamed chats, `concurrency` at a time; a stream the
    relay cut is recorded with the text received before the error."""
    gate = asyncio.Semaphore(concurrency)
    payload = json.dumps(BODY).encode()
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def one() -> tuple[int, str]:
            async with gate:
                received: list[str] = []
                status = 0
                try:
                    async with client.stream("POST", url, content=payload, headers=headers) as r:
                        status = r.status_code
                        async for text in r.aiter_text():
                            received.append(text)
                except httpx.HTTPError as error:
                    received.append(f"\n<cut: {error!r}>")
                return status, "".join(received)

        return await asyncio.gather(*(one() for _ in range(count)))


def _contents(text: str) -> list[str]:
    return [c["choices"][0]["delta"].get("content", "") for c in chunks(text) if c["choices"]]


def test_a_relayed_stream_carries_what_the_simulator_sends(relay: tuple[Sim, str]) -> None:
    sim, url = relay
    response, direct = stream_text(sim, "/v1/chat/completions", BODY)
    assert response.status_code == 200
    with httpx.stream("POST", url, json=BODY, timeout=30) as relayed:
        assert relayed.status_code == 200
        assert relayed.headers["content-type"].startswith("text/event-stream")
        text = "".join(relayed.iter_text())
    assert parse_sse(text)[-1] == (None, "[DONE]")
    assert len(_contents(text)) == len(_contents(direct))


def test_every_concurrent_stream_through_the_h2c_hop_is_complete(relay: tuple[Sim, str]) -> None:
    _, url = relay
    results = asyncio.run(_streams(url, 150, 25))
    incomplete = [text[-200:] for status, text in results if not text.endswith("data: [DONE]\n\n")]
    assert [status for status, _ in results] == [200] * 150
    assert incomplete == []
