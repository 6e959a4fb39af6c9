"""`modelplane explain md/NAME` asks the running fleet-scheduler and prints what offline `-f` prints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_scheduler.server import register
from fleet_scheduler.snapshot import StaticSnapshot
from modelplane.cli.main import main
from modelplane.grpcutil import GrpcServer, start_server
from modelplane.proto.placement import SERVICE_NAME

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "fleet"


@pytest.fixture(scope="module")
def scheduler() -> Iterator[GrpcServer]:
    running = start_server("127.0.0.1:0", register(StaticSnapshot.load([EXAMPLES])), [SERVICE_NAME])
    yield running
    running.stop(0)


@pytest.mark.parametrize("name", ["chat-small", "coder-gang", "chat-large"])
def test_remote_explain_prints_the_same_as_offline_explain(
    scheduler: GrpcServer, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert main(["explain", f"md/{name}", "-n", "ml-team", "-f", str(EXAMPLES)]) == 0
    offline = capsys.readouterr().out
    assert main(["explain", f"md/{name}", "-n", "ml-team", "--scheduler", scheduler.address]) == 0
    assert capsys.readouterr().out == offline


def test_remote_explain_of_an_unknown_deployment_exits_2_and_says_not_found(
    scheduler: GrpcServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "md/nope", "-n", "ml-team", "--scheduler", scheduler.address]) == 2
    err = capsys.readouterr().err
    assert "NOT_FOUND" in err
    assert "ml-team/nope" in err


def test_remote_explain_reads_the_address_from_the_environment(
    scheduler: GrpcServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPLANE_FLEET_SCHEDULER", scheduler.address)
    assert main(["explain", "md/chat-small", "-n", "ml-team"]) == 0
    assert "replica 0 (chat-small-eu-central-0) on eu-central" in capsys.readouterr().out
