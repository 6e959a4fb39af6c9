"""The shared client: default deadline, retry policy, service config, plain-transport guard."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from modelplane.grpcutil import GrpcServer, RetryPolicy, dial, service_config, start_server

from tests.grpcutil.echo import SERVICE, Echo, call


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[GrpcServer] = []

    def run(echo: Echo) -> GrpcServer:
        started.append(start_server("127.0.0.1:0", echo.register(), [SERVICE]))
        return started[-1]

    yield run
    for server in started:
        server.stop(0)


def test_the_service_config_carries_the_deadline_and_retry_policy_per_service() -> None:
    config = service_config(["a.B", "c.D"], deadline_s=2.5, retry=RetryPolicy(max_attempts=3))
    assert json.loads(config) == {
        "methodConfig": [
            {
                "name": [{"service": "a.B"}, {"service": "c.D"}],
                "timeout": "2.5s",
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2.0,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }


def test_without_services_or_policies_the_config_applies_to_every_method_and_sets_nothing() -> None:
    assert json.loads(service_config([], deadline_s=None, retry=None)) == {
        "methodConfig": [{"name": [{}]}]
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 1}, "max_attempts must be 2..5"),
        ({"max_attempts": 6}, "max_attempts must be 2..5"),
        ({"initial_backoff_s": 0}, "must be positive"),
        ({"codes": ()}, "status code names"),
        ({"codes": ("UNAVAILABLE", "FLAKY")}, "status code names"),
    ],
    ids=["one attempt", "over the cap", "zero backoff", "no codes", "unknown code"],
)
def test_a_retry_policy_grpc_would_ignore_is_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def test_a_call_without_its_own_timeout_ends_at_the_default_deadline(serve: Any) -> None:
    server = serve(Echo(delay_s=3))
    with dial(server.address, services=[SERVICE], deadline_s=0.2, retry=None) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failure:
            call(channel)
        elapsed = time.monotonic() - started
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 2


def test_a_shorter_per_call_timeout_wins_over_the_default(serve: Any) -> None:
    server = serve(Echo(delay_s=3))
    with dial(server.address, services=[SERVICE], deadline_s=30, retry=None) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failure:
            call(channel, timeout=0.2)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


def test_an_unavailable_answer_is_retried_once_and_then_succeeds(serve: Any) -> None:
    echo = Echo(failures=1)
    server = serve(echo)
    with dial(server.address, services=[SERVICE], deadline_s=5) as channel:
        assert call(channel, b"again") == b"again"
    assert echo.calls == 2


def test_without_a_retry_policy_the_unavailable_answer_reaches_the_caller(serve: Any) -> None:
    echo = Echo(failures=1)
    server = serve(echo)
    with (
        dial(server.address, services=[SERVICE], deadline_s=5, retry=None) as channel,
        pytest.raises(grpc.RpcError) as failure,
    ):
        call(channel)
    assert (failure.value.code(), echo.calls) == (grpc.StatusCode.UNAVAILABLE, 1)


def test_retries_stop_after_max_attempts(serve: Any) -> None:
    echo = Echo(failures=10)
    server = serve(echo)
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)
    with (
        dial(server.address, services=[SERVICE], deadline_s=5, retry=policy) as channel,
        pytest.raises(grpc.RpcError) as failure,
    ):
        call(channel)
    assert (failure.value.code(), echo.calls) == (grpc.StatusCode.UNAVAILABLE, 3)


def test_codes_outside_the_policy_are_not_retried(serve: Any) -> None:
    echo = Echo(failures=1, code=grpc.StatusCode.INVALID_ARGUMENT)
    server = serve(echo)
    with (
        dial(server.address, services=[SERVICE], deadline_s=5) as channel,
        pytest.raises(grpc.RpcError) as failure,
    ):
        call(channel)
    assert (failure.value.code(), echo.calls) == (grpc.StatusCode.INVALID_ARGUMENT, 1)


def test_plain_transport_to_a_remote_target_is_refused() -> None:
    with pytest.raises(ValueError, match="refusing plain"):
        dial("fleet-scheduler.modelplane.svc:50061")
