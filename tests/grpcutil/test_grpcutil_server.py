"""The shared server: health answers, graceful stop, refusing plain non-loopback, binding."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modelplane.grpcutil import GrpcServer, dial, start_server
from modelplane.grpcutil.server import InsecureAddressError

from tests.grpcutil.echo import SERVICE, Echo, call

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def echo() -> Echo:
    return Echo(delay_s=0.0)


@pytest.fixture
def server(echo: Echo) -> Iterator[GrpcServer]:
    running = start_server("127.0.0.1:0", echo.register(), [SERVICE])
    yield running
    running.stop(0)


def health_of(address: str, service: str) -> int:
    with dial(address, deadline_s=5) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        status: int = stub.Check(health_pb2.HealthCheckRequest(service=service)).status
        return status


def test_health_says_serving_for_the_server_and_each_named_service(server: GrpcServer) -> None:
    assert {name: health_of(server.address, name) for name in ["", SERVICE]} == {
        "": SERVING,
        SERVICE: SERVING,
    }


def test_health_answers_not_found_for_a_service_the_server_does_not_have(
    server: GrpcServer,
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        health_of(server.address, "no.Such")
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_server_started_not_serving_turns_serving_when_told(echo: Echo) -> None:
    running = start_server("127.0.0.1:0", echo.register(), [SERVICE], serving=False)
    try:
        before = health_of(running.address, SERVICE)
        running.set_serving(True)
        assert (before, health_of(running.address, SERVICE)) == (NOT_SERVING, SERVING)
    finally:
        running.stop(0)


def test_the_bound_address_reports_the_port_the_kernel_picked(server: GrpcServer) -> None:
    assert server.port > 0
    assert server.address == f"127.0.0.1:{server.port}"
    with dial(server.address) as channel:
        assert call(channel, b"hello") == b"hello"


def test_graceful_stop_lets_an_in_flight_call_finish_and_then_refuses_calls() -> None:
    slow = Echo(delay_s=0.5)
    running = start_server("127.0.0.1:0", slow.register(), [SERVICE])
    channel = dial(running.address, retry=None)
    results: list[bytes] = []
    worker = threading.Thread(target=lambda: results.append(call(channel, b"slow")))
    worker.start()
    while slow.calls == 0:
        time.sleep(0.01)
    running.stop(grace=5)
    worker.join(5)
    assert results == [b"slow"]
    assert running.wait(0)
    with pytest.raises(grpc.RpcError) as failure:
        call(channel, timeout=1)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_stop_twice_is_harmless(echo: Echo) -> None:
    running = start_server("127.0.0.1:0", echo.register(), [SERVICE])
    running.stop(0)
    running.stop(0)
    assert running.wait(0)


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", "10.1.2.3:0", "example.com:50061"])
def test_plain_transport_is_refused_on_addresses_other_machines_can_reach(
    echo: Echo, address: str
) -> None:
    with pytest.raises(InsecureAddressError, match="refusing plain"):
        start_server(address, echo.register(), [SERVICE])


def test_binding_a_port_already_in_use_fails_naming_the_address(
    echo: Echo, server: GrpcServer
) -> None:
    with pytest.raises(OSError, match=f"cannot listen on {server.address}"):
        start_server(server.address, echo.register(), [SERVICE])
