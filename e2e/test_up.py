"""`modelplane up` without the tour, followed as a person follows its output.

`up` brings up a local fleet of its own (a network namespace next to the session's)
with the control plane installed from this checkout's image by the Helm chart, and
prints what to do next. The test pastes those commands in order (the gateway, a
cluster's simulated nodes and its registration, a deployment), waits for a chat
completion through the ModelService's address, runs the printed `explain` against
the chart's fleet-scheduler, runs `up` again (a helm upgrade that keeps serving),
and tears it down with the printed `down`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.kube import wait_for
from e2e.usercli import MODELPLANE, ROOT, inside, kubectl_json


def up(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODELPLANE, "up", "--state", str(state)],
        capture_output=True, text=True, check=False, timeout=900, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fleet_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    state = tmp_path_factory.mktemp("up")
    done = up(state)
    print(done.stdout[-4000:], done.stderr[-2000:])
    try:
        assert done.returncode == 0, done.stderr
        yield state, done.stdout
    finally:
        subprocess.run(
            [*MODELPLANE, "down", "--state", str(state)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip


def commands_after(output: str, heading: str) -> list[list[str]]:
    """The indented command lines printed under the line that starts with `heading`."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading)) + 1
    found = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        found.append(shlex.split(line))
    return found


def run(command: list[str], timeout: float = 300) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=timeout, cwd=ROOT
    )
    assert done.returncode == 0, f"{shlex.join(command)}: {done.stderr}"
    return done.stdout


def answer(state: Path, address: str) -> bool:
    done = inside(state, sys.executable, "-m", "e2e.sdk_client", address, "1")
    if done.returncode != 0:
        return False
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    return all(pod and content for pod, content, *_ in seen["chat"])


def test_the_printed_steps_serve_a_model_and_explain_asks_the_charts_scheduler(
    fleet_up: tuple[Path, str],
) -> None:
    state, output = fleet_up
    assert "control plane installed in" in output
    (gateway,) = commands_after(output, "The front door (gateway) answers at http://10.240.0.1")
    run(gateway)
    for command in commands_after(output, "Add GPU capacity"):
        run(command)
    deploy, _listing = commands_after(output, "Apply your manifests")
    run(deploy)

    def address() -> str | None:
        service = kubectl_json(state, "get", "modelservice", "qwen", "-n", "ml-team")
        return (service.get("status") or {}).get("address")

    served = wait_for("the ModelService's address", address)
    wait_for("a chat completion through it", lambda: answer(state, str(served)), 240)

    (explain,) = commands_after(output, "Why a deployment's replicas are where they are")
    said = run(explain, timeout=120)
    assert said.startswith("ModelDeployment ml-team/qwen-demo: 1 of 1 replicas placed"), said
    assert "replica 0 (qwen-demo-us-east-0) on us-east:" in said, said


def test_up_again_upgrades_the_release_and_keeps_serving(fleet_up: tuple[Path, str]) -> None:
    state, _ = fleet_up
    again = up(state)
    assert again.returncode == 0, again.stderr
    history = inside(state, "kubectl", "get", "secrets", "-n", "modelplane-system",
                     "-l", "owner=helm,name=modelplane", "-o", "json")  # fmt: skip
    assert history.returncode == 0, history.stderr
    revisions = {s["metadata"]["labels"]["version"] for s in json.loads(history.stdout)["items"]}
    assert revisions == {"1", "2"}, revisions
    served = kubectl_json(state, "get", "modelservice", "qwen", "-n", "ml-team")["status"]
    wait_for("an answer after the upgrade", lambda: answer(state, served["address"]), 120)
