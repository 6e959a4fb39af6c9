"""The activator end to end in one process: held requests, wake-up, refusals and reports.

The control cluster is `tests.fakekube.FakeKube` (list + watch of ModelServices and
ModelEndpoints); the endpoint is `EndpointDouble`, an HTTP server on
`modelplane.httpserver` that answers with the path and headers it received and
streams `/stream` in three chunks; the scaler is `ActivationDouble`, a gRPC
`Activation` servicer that records every report. Expected answers come from the
API's promises (the issue and `kubectl explain modelservice.spec.scaleToZero`),
not from the activator's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
import httpx
from activator.app import ENDPOINTS, SERVICES, Config, serve
from modelplane.httpserver import HttpServer, Request, Response
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2, activation_pb2_grpc

from tests.fakekube import FakeKube

Json = dict[str, Any]
CHUNKS = (b'data: {"n": 1}\n\n', b'data: {"n": 2}\n\n', b"data: [DONE]\n\n")


class EndpointDouble:
    """An endpoint: echoes what it received; `/.../stream` answers three chunks as a stream."""

    def __init__(self) -> None:
        self.server = HttpServer(self.handle)
        self.seen: list[Json] = []

    async def handle(self, request: Request) -> Response:
        self.seen.append({"path": request.target.decode(), "headers": dict(request.headers),
                          "body": request.body.decode()})  # fmt: skip
        if request.path.endswith("/stream"):
            return Response(200, content_type="text/event-stream", stream=_chunks())
        return Response(200, json.dumps(self.seen[-1]).encode(), "application/json")


async def _chunks() -> AsyncGenerator[bytes, None]:
    for chunk in CHUNKS:
        yield chunk
        await asyncio.sleep(0.01)


class ActivationDouble(activation_pb2_grpc.ActivationServicer):
    """The scaler's Activation API: records every report as {service: held}."""

    def __init__(self) -> None:
        self.reports: list[dict[str, int]] = []
        self.senders: set[str] = set()
        self.changed = asyncio.Event()

    async def ReportHeld(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC's name)
        self.senders.add(request.activator)
        self.reports.append({f"{s.namespace}/{s.service}": s.held for s in request.services})
        self.changed.set()
        return activation_pb2.HeldReportAck()

    async def until(self, wanted: dict[str, int]) -> None:
        while not self.reports or self.reports[-1] != wanted:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


def model_service(name: str, **scale_to_zero: int) -> Json:
    spec: Json = {"endpoints": [{"selector": {"matchLabels": {"modelplane.ai/deployment": name}}}]}
    if scale_to_zero:
        spec["scaleToZero"] = scale_to_zero
    return {"metadata": {"name": name, "namespace": "ml"}, "spec": spec}


def host_address() -> str:
    """This machine's own non-loopback IPv4 address (the one its default route leaves from):
    a ModelEndpoint's URL may not name a loopback address, so the endpoint double is named
    by this one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
        found = str(probe.getsockname()[0])
    assert not found.startswith("127."), "the tests need a non-loopback IPv4 address"
    return found


class Rig:
    def __init__(self, kube: FakeKube, url: str, endpoint: EndpointDouble,
                 scaler: ActivationDouble, endpoint_address: str) -> None:  # fmt: skip
        self.kube = kube
        self.url = url
        self.endpoint = endpoint
        self.scaler = scaler
        self.endpoint_address = endpoint_address

    def wake(self, deployment: str) -> None:
        """endpoint-manager publishing the Ready replica's ModelEndpoint."""
        self.kube.put(ENDPOINTS, {
            "metadata": {"name": f"{deployment}-r1", "namespace": "ml",
                         "labels": {"modelplane.ai/deployment": deployment}},
            "spec": {"url": f"http://{self.endpoint_address}", "rewritePath": f"/ml/{deployment}-r1/"},
        })  # fmt: skip


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[Rig]:
    kube = FakeKube()
    for service in (
        model_service("qwen", holdTimeoutSeconds=30, maxHeldRequests=2),
        model_service("short", holdTimeoutSeconds=1),
        model_service("plain"),
    ):
        kube.put(SERVICES, service)
    endpoint = EndpointDouble()
    endpoint_port = await endpoint.server.start("0.0.0.0", 0)
    scaler = ActivationDouble()
    grpc_server = grpc.aio.server()
    activation_pb2_grpc.add_ActivationServicer_to_server(scaler, grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = activation_pb2_grpc.ActivationStub(channel)
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    config = Config(host="127.0.0.1", port=0, status_host="127.0.0.1", status_port=0,
                    name="activator-test", report_interval_s=0.2)  # fmt: skip
    task = asyncio.create_task(serve(config, stop, kube, stub, bound))
    port = await bound
    address = f"{host_address()}:{endpoint_port}"
    try:
        yield Rig(kube, f"http://127.0.0.1:{port}", endpoint, scaler, address)
    finally:
        stop.set()
        await task
        await channel.close()
        await grpc_server.stop(0)
        await endpoint.server.shutdown(0)


CHAT = {"model": "qwen", "messages": [{"role": "user", "content": "hi"}]}


def held_seconds(reply: httpx.Response) -> float:
    return float(reply.headers["x-modelplane-held-seconds"])


def test_a_held_request_is_reported_and_answered_by_the_first_ready_endpoint() -> None:
    async def scenario() -> None:
        async with running() as rig, httpx.AsyncClient(timeout=20) as client:
            call = asyncio.create_task(
                client.post(f"{rig.url}/ml/qwen/v1/chat/completions?x=1", json=CHAT)
            )
            await rig.scaler.until({"ml/qwen": 1})
            assert not call.done()
            rig.wake("qwen")
            reply = await call
            assert reply.status_code == 200
            seen = reply.json()
            assert seen["path"] == "/ml/qwen-r1/v1/chat/completions?x=1"
            assert json.loads(seen["body"]) == CHAT
            assert seen["headers"].get("transfer-encoding") == "chunked"
            assert "content-length" not in seen["headers"]
            assert held_seconds(reply) > 0
            await rig.scaler.until({})
            assert rig.scaler.senders == {"activator-test"}
            again = await client.get(f"{rig.url}/ml/qwen/v1/models")
            assert again.status_code == 200
            assert "x-modelplane-held-seconds" not in again.headers
            assert again.json()["path"] == "/ml/qwen-r1/v1/models"
            assert again.json()["body"] == ""
            assert "transfer-encoding" not in again.json()["headers"]

    asyncio.run(scenario())


def test_a_held_stream_is_relayed_chunk_for_chunk() -> None:
    async def scenario() -> None:
        async with running() as rig, httpx.AsyncClient(timeout=20) as client:

            async def read() -> tuple[int, str, bytes]:
                async with client.stream("POST", f"{rig.url}/ml/qwen/v1/stream", json=CHAT) as r:
                    body = b"".join([chunk async for chunk in r.aiter_raw()])
                    return r.status_code, r.headers["content-type"], body

            call = asyncio.create_task(read())
            await rig.scaler.until({"ml/qwen": 1})
            rig.wake("qwen")
            assert await call == (200, "text/event-stream", b"".join(CHUNKS))

    asyncio.run(scenario())


def test_past_the_hold_time_the_answer_is_503_with_retry_after() -> None:
    async def scenario() -> None:
        async with running() as rig, httpx.AsyncClient(timeout=20) as client:
            reply = await client.post(f"{rig.url}/ml/short/v1/chat/completions", json=CHAT)
            assert reply.status_code == 503
            assert reply.headers["retry-after"] == "30"
            assert reply.json()["error"]["code"] == "no_endpoints"
            assert "holdTimeoutSeconds (1 s)" in reply.json()["error"]["message"]
            assert held_seconds(reply) >= 1.0
            assert rig.endpoint.seen == []

    asyncio.run(scenario())


def test_beyond_max_held_requests_the_answer_is_429_and_the_held_ones_still_get_answered() -> None:
    async def scenario() -> None:
        async with running() as rig, httpx.AsyncClient(timeout=20) as client:
            url = f"{rig.url}/ml/qwen/v1/chat/completions"
            held = [asyncio.create_task(client.post(url, json=CHAT)) for _ in range(2)]
            await rig.scaler.until({"ml/qwen": 2})
            refused = await client.post(url, json=CHAT)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["error"]["code"] == "too_many_held"
            assert "maxHeldRequests (2)" in refused.json()["error"]["message"]
            rig.wake("qwen")
            assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]

    asyncio.run(scenario())


def test_a_service_without_scale_to_zero_gets_503_at_once_and_an_unknown_one_404() -> None:
    async def scenario() -> None:
        async with running() as rig, httpx.AsyncClient(timeout=20) as client:
            plain = await client.post(f"{rig.url}/ml/plain/v1/chat/completions", json=CHAT)
            assert plain.status_code == 503
            assert "spec.scaleToZero is not set" in plain.json()["error"]["message"]
            assert "retry-after" not in plain.headers
            unknown = await client.get(f"{rig.url}/ml/nobody/v1/models")
            assert unknown.status_code == 404
            assert unknown.json()["error"]["message"] == "no ModelService ml/nobody"
            assert rig.scaler.reports == []

    asyncio.run(scenario())


def test_a_client_that_gives_up_while_held_stops_counting() -> None:
    async def scenario() -> None:
        async with running() as rig, httpx.AsyncClient(timeout=20) as client:
            url = f"{rig.url}/ml/qwen/v1/chat/completions"
            call = asyncio.create_task(client.post(url, json=CHAT))
            await rig.scaler.until({"ml/qwen": 1})
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            await rig.scaler.until({})

    asyncio.run(scenario())
