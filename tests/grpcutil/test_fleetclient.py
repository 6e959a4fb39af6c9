"""FleetClient against an in-process Fleet server: watch streams, their ends, unary deadlines."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from modelplane.fleetclient import FleetClient, FleetError
from modelplane.grpcutil import start_server
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2 as pb
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2_grpc as pb_grpc

SERVICE_NAME = "modelplane.fleet.v1.Fleet"
DEPLOYMENT = {"kind": "Deployment", "metadata": {"name": "a", "namespace": "ml"}}


class Fleet(pb_grpc.FleetServicer):
    """Watch sends two events, then behaves as `label_selector` says: "end" ends the
    stream, "break" aborts it UNAVAILABLE, "hang" waits until the client gives up.
    Get records the deadline it was given."""

    def __init__(self) -> None:
        self.requests: list[pb.ListRequest] = []
        self.deadlines: list[float | None] = []

    def Watch(self, request: pb.ListRequest, context: Any) -> Iterator[pb.WatchEvent]:  # noqa: N802
        self.requests.append(request)
        yield pb.WatchEvent(type="ADDED", object_json=json.dumps(DEPLOYMENT))
        yield pb.WatchEvent(type="DELETED", object_json=json.dumps(DEPLOYMENT))
        if request.label_selector == "break":
            context.abort(grpc.StatusCode.UNAVAILABLE, "cluster east: connection lost")
        while request.label_selector == "hang" and context.is_active():
            time.sleep(0.05)

    def Get(self, request: pb.ObjectRef, context: Any) -> pb.ObjectResponse:  # noqa: N802
        self.deadlines.append(context.time_remaining())
        return pb.ObjectResponse(object_json=json.dumps(DEPLOYMENT))


@pytest.fixture
def served() -> Iterator[tuple[Fleet, str]]:
    fleet = Fleet()  # type: ignore[abstract]  # serves only Watch and Get
    server = start_server(
        "127.0.0.1:0", lambda s: pb_grpc.add_FleetServicer_to_server(fleet, s), [SERVICE_NAME]
    )
    yield fleet, server.address
    server.stop(0)


async def _watch(target: str, selector: str, renew_s: float = 300.0) -> list[tuple[str, Any]]:
    client = FleetClient.connect(target, "test", None)
    seen: list[tuple[str, Any]] = []
    try:
        async for event in client.watch(
            "east", "apps/v1", "Deployment", "", selector, renew_s=renew_s
        ):
            seen.append(event)
    except FleetError as error:
        seen.append(("error", (error.code, error.message)))
    finally:
        await client.close()
    return seen


def test_a_watch_streams_decoded_events_and_names_its_kind(served: tuple[Fleet, str]) -> None:
    fleet, target = served
    assert asyncio.run(_watch(target, "end")) == [("ADDED", DEPLOYMENT), ("DELETED", DEPLOYMENT)]
    (request,) = fleet.requests
    assert (request.kind.cluster, request.kind.api_version, request.kind.resource) == (
        "east", "apps/v1", "deployments")  # fmt: skip


def test_a_broken_watch_raises_with_the_servers_code_and_message(
    served: tuple[Fleet, str],
) -> None:
    _, target = served
    assert asyncio.run(_watch(target, "break")) == [
        ("ADDED", DEPLOYMENT),
        ("DELETED", DEPLOYMENT),
        ("error", ("UNAVAILABLE", "cluster east: connection lost")),
    ]


def test_a_watch_past_its_renewal_time_ends_quietly(served: tuple[Fleet, str]) -> None:
    _, target = served
    events = asyncio.run(_watch(target, "hang", renew_s=0.5))
    assert events == [("ADDED", DEPLOYMENT), ("DELETED", DEPLOYMENT)]


def test_unary_calls_carry_a_deadline(served: tuple[Fleet, str]) -> None:
    fleet, target = served

    async def get() -> Any:
        client = FleetClient.connect(target, "test", None)
        try:
            return await client.get("east", "apps/v1", "Deployment", "ml", "a")
        finally:
            await client.close()

    assert asyncio.run(get()) == DEPLOYMENT
    # Every attempt (a loaded machine may see the first one retried) carries a deadline: the
    # client's 10 s, which gRPC's timeout header may round up a little on the way (10.1 s seen).
    assert fleet.deadlines
    assert all(left is not None and left <= 10.5 for left in fleet.deadlines), fleet.deadlines
