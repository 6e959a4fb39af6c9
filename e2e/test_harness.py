"""The local fleet's harness as a user drives it: status, exec, idempotent up, and one
inference cluster stopped, started, added and removed while the fleet runs.

Local backend only. Destructive steps use `west` (stopped and started again) or a
spare cluster this module adds and removes, so other tests keep their clusters.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from modelplane_localfleet import process
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE, harness, leftovers

pytestmark = pytest.mark.usefixtures("local_fleet")


def _records(fleet: Fleet) -> dict[str, int]:
    return {
        f"{path.parent.name}/{path.stem}": record.pid
        for path in sorted((fleet.state / "run").glob("*/*.json"))
        if (record := process.running(path)) is not None
    }


def _status_rows(fleet: Fleet) -> tuple[int, list[list[str]]]:
    result = harness("status", "--state", str(fleet.state))
    rows = [line.split(None, 4) for line in result.stdout.splitlines()[1:]]
    return result.returncode, rows


def test_status_shows_every_component_of_every_cluster_healthy(local_fleet: Fleet) -> None:
    code, rows = _status_rows(local_fleet)
    assert code == 0, rows
    components = {(r[0], r[1]) for r in rows if r[3] == "healthy"}
    for cluster in ("control", "east", "west"):
        for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            assert (cluster, component) in components
        assert (cluster, "traefik") in components
    assert ("east", "lws-manager") in components
    assert ("control", "lws-manager") not in {(r[0], r[1]) for r in rows}


def test_exec_runs_kubectl_inside_the_fleet_against_the_control_cluster(local_fleet: Fleet) -> None:
    result = harness(
        "exec", "--state", str(local_fleet.state), "--",
        "kubectl", "get", "secret", "-n", "modelplane-system", "east-kubeconfig", "-o", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    secret = json.loads(result.stdout)
    stored = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    assert stored["clusters"][0]["cluster"]["server"] == local_fleet.cluster("east").plan.server
    where = harness("exec", "--state", str(local_fleet.state), "--", "sh", "-c", "echo $KUBECONFIG")
    assert where.stdout.strip() == str(local_fleet.cluster("control").kubeconfig_path)


def test_the_stored_kubeconfig_reaches_its_cluster(local_fleet: Fleet, tmp_path: Path) -> None:
    control = local_fleet.cluster("control")
    secret = json.loads(
        control.kubectl(
            "get", "secret", "-n", "modelplane-system", "west-kubeconfig", "-o", "json"
        ).stdout
    )
    kubeconfig = tmp_path / "west.yaml"
    kubeconfig.write_bytes(base64.b64decode(secret["data"]["kubeconfig"]))
    kubectl = str(local_fleet.binaries().kubectl)
    result = subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", "get", "--raw", "/version"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["gitVersion"] == "v1.36.3"


def test_up_again_on_a_running_fleet_changes_nothing(local_fleet: Fleet) -> None:
    before = _records(local_fleet)
    again = harness("up", "-f", str(FLEET_FILE), "--state", str(local_fleet.state))
    assert again.returncode == 0, again.stderr
    assert _records(local_fleet) == before


def test_a_stopped_cluster_is_down_and_comes_back_with_its_data(local_fleet: Fleet) -> None:
    west = local_fleet.cluster("west")
    west.kubectl("create", "configmap", "survivor", "-n", "default", "--from-literal=k=v")
    stopped = harness("stop", "west", "--state", str(local_fleet.state))
    assert stopped.returncode == 0, stopped.stderr
    code, rows = _status_rows(local_fleet)
    assert code == 1
    assert all(r[3] == "down" for r in rows if r[0] == "west")
    assert all(r[3] == "healthy" for r in rows if r[0] != "west")
    assert west.kubectl("get", "ns", check=False, timeout=20).returncode != 0
    started = harness("start", "west", "--state", str(local_fleet.state))
    assert started.returncode == 0, started.stderr
    value = west.kubectl(
        "get", "configmap", "survivor", "-n", "default", "-o", "jsonpath={.data.k}"
    )
    assert value.stdout == "v"
    assert _status_rows(local_fleet)[0] == 0


def test_a_cluster_added_while_the_fleet_runs_is_healthy_and_remove_deletes_it(
    local_fleet: Fleet, tmp_path: Path
) -> None:
    spare = tmp_path / "spare.yaml"
    spare.write_text(
        FLEET_FILE.read_text()
        .replace("name: west", "name: spare")
        .replace("west-kubeconfig", "spare-kubeconfig")
    )
    added = harness("add", "spare", "-f", str(spare), "--state", str(local_fleet.state))
    assert added.returncode == 0, added.stderr
    fleet = Fleet(local_fleet.state)
    cluster = fleet.cluster("spare")
    assert cluster.plan.index == 3
    assert cluster.kubectl("get", "ns", "default").returncode == 0
    control = fleet.cluster("control")
    assert (
        control.kubectl("get", "secret", "-n", "modelplane-system", "spare-kubeconfig").returncode
        == 0
    )

    removed = harness("remove", "spare", "--state", str(local_fleet.state))
    assert removed.returncode == 0, removed.stderr
    assert "spare" not in Fleet(local_fleet.state).layout.clusters
    assert not cluster.kubeconfig_path.exists()
    assert not any((local_fleet.state / "run" / "spare").glob("*.json"))
    gone = control.kubectl(
        "get", "secret", "-n", "modelplane-system", "spare-kubeconfig", check=False
    )
    assert gone.returncode != 0


def test_harness_errors_name_the_problem(local_fleet: Fleet) -> None:
    unknown = harness("stop", "nowhere", "--state", str(local_fleet.state))
    assert unknown.returncode == 2
    assert "no cluster 'nowhere'" in unknown.stderr
    control = harness("stop", "control", "--state", str(local_fleet.state))
    assert control.returncode == 2
    assert "down" in control.stderr


def test_a_probe_outside_the_fleets_namespace_is_refused(local_fleet: Fleet) -> None:
    # A process back in the namespace this session started from: probes must refuse to run.
    assert local_fleet.namespace.origin() is not None
    code = (
        "from pathlib import Path; from modelplane_localfleet.fleet import Fleet\n"
        f"Fleet(Path({str(local_fleet.state)!r})).cluster('control').status()\n"
    )
    result = subprocess.run(
        ["nsenter", f"--net={local_fleet.namespace.origin()}", sys.executable, "-c", code],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "must run inside the fleet's network namespace" in result.stderr


def test_down_cleans_up_after_a_harness_killed_in_the_middle_of_up(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    documents = [
        d for d in yaml.safe_load_all(FLEET_FILE.read_text()) if d["metadata"]["name"] != "west"
    ]
    one.write_text(yaml.safe_dump_all(documents))
    state = tmp_path / "crashed"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelplane_localfleet",
            "up",
            "-f",
            str(one),
            "--state",
            str(state),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (state / "run" / "east" / "kube-apiserver.json").exists():
        assert time.monotonic() < deadline, "up never started east's apiserver"
        assert up.poll() is None, "up ended before it could be killed"
        time.sleep(0.1)
    up.kill()
    up.wait()
    crashed = Fleet(state)
    assert crashed.namespace.exists() and crashed.namespace.pids(), "processes outlived the harness"
    down = harness("down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    assert leftovers(crashed) == []
