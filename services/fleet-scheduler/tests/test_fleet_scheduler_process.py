"""The service as a process: `python -m fleet_scheduler` serves, answers health, stops on SIGTERM.

Slow-ish (a second or two: a fresh interpreter loads the CRD schemas), so kept to the
few things only a real process shows: the startup log line with the bound address,
health SERVING, a real call, a clean exit on SIGTERM, and exit 2 on bad configuration.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modelplane.grpcutil import dial
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2 as pb
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2_grpc as pb_grpc
from modelplane.proto.placement import SERVICE_NAME

FLEET = Path(__file__).parent / "fleet"
STARTUP_S = 60.0


class Service:
    """A running `python -m fleet_scheduler` whose stderr JSON lines are collected."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleet_scheduler", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"message": "<not JSON>", "line": line})

    def wait_for(self, message: str, timeout: float = STARTUP_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                record = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(record)
            if record.get("message") == message:
                return record
        raise AssertionError(f"no {message!r} log line; saw {self.seen}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service("--listen", "127.0.0.1:0", "--fleet", str(FLEET))
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def test_the_process_serves_health_and_the_api_then_stops_cleanly_on_sigterm(
    service: Service,
) -> None:
    address = service.wait_for("serving")["address"]
    with dial(address, services=[SERVICE_NAME], deadline_s=20) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME)).status
        explained = pb_grpc.FleetSchedulerStub(channel).Explain(
            pb.ExplainRequest(namespace="ml-team", name="chat")
        )
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert [r.cluster for r in explained.deployment.replicas] == ["east"]
    assert service.stop() == 0
    assert service.wait_for("grpc server stopped", timeout=10)["address"] == address


def test_a_fleet_manifest_that_does_not_parse_stops_startup_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    service = Service("--listen", "127.0.0.1:0", "--fleet", str(tmp_path))
    record = service.wait_for("cannot load fleet manifest")
    assert record["why"].startswith(f"{tmp_path / 'bad.yaml'} (document 0): malformed YAML")
    assert service.proc.wait(timeout=30) == 2


def test_plain_grpc_on_a_reachable_address_is_refused_with_exit_2() -> None:
    service = Service("--listen", "0.0.0.0:0")
    assert "refusing plain" in service.wait_for("cannot serve")["why"]
    assert service.proc.wait(timeout=30) == 2


def test_the_health_check_fails_once_the_process_is_gone(service: Service) -> None:
    address = service.wait_for("serving")["address"]
    assert service.stop() == 0
    with dial(address, deadline_s=2, retry=None) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
