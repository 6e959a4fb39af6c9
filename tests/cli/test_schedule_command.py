"""`modelplane schedule` as a user runs it: output shapes, exit codes, feeding YAML back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from modelplane.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "fleet"
SEED = ROOT.parent / "shared" / "seed" / "manifests"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_output_has_exactly_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schedule", "-f", str(EXAMPLES), "-o", "json")
    assert code == 0
    document = json.loads(out)
    assert list(document) == ["deployments"]
    assert [d["name"] for d in document["deployments"]] == [
        "chat-small",
        "coder-gang",
        "chat-large",
    ]
    for entry in document["deployments"]:
        assert list(entry) == [
            "namespace",
            "name",
            "desiredReplicas",
            "replicas",
            "unscheduled",
            "reasons",
            "error",
        ]
        for replica in entry["replicas"]:
            assert list(replica) == ["index", "cluster", "engines"]
    small, gang, large = document["deployments"]
    assert small["replicas"] == [
        {"index": 0, "cluster": "eu-central", "engines": {"chat": "h100"}},
        {"index": 1, "cluster": "us-east", "engines": {"chat": "l4"}},
        {"index": 2, "cluster": "us-west", "engines": {"chat": "a100"}},
    ]
    assert gang["replicas"] == [{"index": 0, "cluster": "eu-central", "engines": {"coder": "h100"}}]
    assert large["unscheduled"] == 1
    assert large["error"] is None
    assert large["reasons"][0] == "eu-central: pool h100 has 0 of 1 needed nodes free"


def test_yaml_output_fed_back_reemits_the_same_replicas_byte_for_byte(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, first, _ = run(capsys, "schedule", "-f", str(EXAMPLES), "-o", "yaml")
    assert code == 0
    replicas = list(yaml.safe_load_all(first))
    assert [r["metadata"]["name"] for r in replicas] == [
        "chat-small-eu-central-0",
        "chat-small-us-east-1",
        "chat-small-us-west-2",
        "coder-gang-eu-central-0",
    ]
    (tmp_path / "replicas.yaml").write_text(first)
    code, second, _ = run(
        capsys, "schedule", "-f", str(EXAMPLES), "-f", str(tmp_path), "-o", "yaml"
    )
    assert code == 0
    assert second == first


def test_a_synthetic_device_is_matched_but_never_claimed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(capsys, "schedule", "-f", str(EXAMPLES), "-o", "yaml")
    gang = next(r for r in yaml.safe_load_all(out) if r["spec"]["deploymentName"] == "coder-gang")
    (engine,) = gang["spec"]["engines"]
    assert engine["nodeCost"] == 2
    leader, worker = engine["members"]
    assert [r["name"] for r in leader["deviceRequests"]] == ["gpu"]
    assert [r["name"] for r in worker["deviceRequests"]] == ["gpu"]


BAD_SELECTOR = """
apiVersion: modelplane.ai/v1alpha1
kind: ModelDeployment
metadata: {name: broken, namespace: ml-team}
spec:
  engines:
  - name: e
    members:
    - role: Standalone
      nodeSelector:
        devices:
        - name: gpu
          selectors: [{cel: 'device.capacity["gpu.nvidia.com"].memory >= '}]
      template: {spec: {containers: [{name: engine, image: x}]}}
"""

BAD_SCHEMA = """
apiVersion: modelplane.ai/v1alpha1
kind: ModelDeployment
metadata: {name: wrong, namespace: ml-team}
spec:
  replicas: -1
  engines: []
"""


def test_invalid_deployments_get_an_error_and_exit_2_with_the_whole_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_SELECTOR + "\n---\n" + BAD_SCHEMA)
    code, out, _ = run(capsys, "schedule", "-f", str(EXAMPLES), "-f", str(tmp_path), "-o", "json")
    assert code == 2
    entries = {d["name"]: d for d in json.loads(out)["deployments"]}
    assert set(entries) == {"chat-small", "coder-gang", "chat-large", "broken", "wrong"}
    assert entries["chat-small"]["error"] is None
    assert entries["broken"]["error"].startswith(
        "ModelDeployment ml-team/broken: spec.engines[0].members[0].nodeSelector.devices[0]"
        '.selectors[0].cel: invalid selector of engine "e" member 0 (Standalone) device "gpu": '
    )
    assert entries["broken"]["replicas"] == []
    assert "spec.replicas" in entries["wrong"]["error"]
    assert "ModelDeployment ml-team/wrong" in entries["wrong"]["error"]


def test_a_malformed_file_is_named_with_its_document_index_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: InferenceClass\n---\nkind: [unclosed\n")
    code, out, err = run(capsys, "schedule", "-f", str(EXAMPLES), "-f", str(broken), "-o", "json")
    assert code == 2
    assert str(broken) in err
    assert "document 1" in err or "#1" in err or "[1]" in err
    assert len(json.loads(out)["deployments"]) == 3


def test_an_unschedulable_deployment_is_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schedule", "-f", str(EXAMPLES), "-o", "table")
    assert code == 0
    assert "ml-team/chat-large: 1 of 1 replicas fit nowhere:" in out


def test_python_dash_m_modelplane_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelplane", "schedule", "-f", str(EXAMPLES), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["deployments"]) == 3


def test_explain_offline_says_why_each_replica_is_where_it_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "explain", "md/chat-large", "-n", "ml-team", "-f", str(EXAMPLES))
    assert code == 0
    assert out.splitlines()[0] == "ModelDeployment ml-team/chat-large: 0 of 1 replicas placed"
    assert "  eu-central: pool h100 has 0 of 1 needed nodes free" in out
    code, out, _ = run(capsys, "explain", "md/chat-small", "-n", "ml-team", "-f", str(EXAMPLES))
    assert "replica 0 (chat-small-eu-central-0) on eu-central: placed on eu-central" in out


def _seed_dirs() -> list[Path]:
    if not SEED.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SEED} is missing; CI must provide ../shared")
        return []
    return sorted(p for p in (SEED / "examples").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", _seed_dirs(), ids=lambda p: p.name)
def test_every_documentation_example_schedules_without_error(
    capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    code, out, err = run(capsys, "schedule", "-f", str(folder), "-o", "json")
    assert code == 0, err
    assert all(d["error"] is None for d in json.loads(out)["deployments"])


def test_an_object_given_twice_is_replaced_by_the_later_one_with_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bigger = (EXAMPLES / "30-deployments.yaml").read_text().replace("replicas: 3", "replicas: 4", 1)
    (tmp_path / "bigger.yaml").write_text(bigger)
    code, out, err = run(capsys, "schedule", "-f", str(EXAMPLES), "-f", str(tmp_path), "-o", "json")
    assert code == 0
    assert "warning: " in err
    assert "ModelDeployment ml-team/chat-small was already given in" in err
    deployments = json.loads(out)["deployments"]
    assert [d["name"] for d in deployments] == ["chat-small", "coder-gang", "chat-large"]
    assert deployments[0]["desiredReplicas"] == 4


# Issue 20's reproduction, verbatim: replica a-c-0 was placed while deployment a was one
# Standalone member (node cost 1); a is now a Leader plus one Worker (node cost 2).
STALE_COST = (Path(__file__).parent / "stale-node-cost.yaml").read_text()
B_ALREADY_PLACED = """
apiVersion: modelplane.ai/v1alpha1
kind: ModelReplica
metadata: {name: b-c-0, namespace: ns, labels: {modelplane.ai/deployment: b}}
spec: {clusterName: c, index: 0, engines: [{name: e, nodePoolName: p, nodeCost: 1, members: [{role: Standalone, nodePoolName: p, deviceRequests: [{name: gpu, deviceClassName: gpu.nvidia.com}]}]}]}
---
apiVersion: modelplane.ai/v1alpha1
kind: InferenceCluster
metadata: {name: d}
spec: {cluster: {source: Existing, existing: {secretRef: {name: k}}}, nodePools: [{name: p, className: g, nodeCount: 2}]}
"""


def test_a_retained_replica_is_charged_its_current_shape_so_the_pool_is_not_overcommitted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "fleet.yaml").write_text(STALE_COST)
    code, out, _ = run(capsys, "schedule", "-f", str(tmp_path), "-o", "table")
    assert (code, out) == (
        0,
        "DEPLOYMENT  REPLICA  CLUSTER  ENGINES (engine=pool)  ACCOUNTING  STATUS\n"
        "ns/a        0        c        e=p                    Node        kept\n"
        "\n"
        "ns/b: 1 of 1 replicas fit nowhere:\n"
        "  c: pool p has 0 of 1 needed nodes free\n",
    )
    _, out, _ = run(capsys, "schedule", "-f", str(tmp_path), "-o", "yaml")
    (kept,) = yaml.safe_load_all(out)
    assert [(e["name"], e["nodeCost"]) for e in kept["spec"]["engines"]] == [("e", 2)]


def test_a_retained_replica_that_no_longer_fits_is_re_placed_and_explain_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "fleet.yaml").write_text(STALE_COST + "---\n" + B_ALREADY_PLACED)
    code, out, _ = run(capsys, "schedule", "-f", str(tmp_path), "-o", "table")
    assert (code, out) == (
        0,
        "DEPLOYMENT  REPLICA  CLUSTER  ENGINES (engine=pool)  ACCOUNTING  STATUS\n"
        "ns/a        0        d        e=p                    Node        new\n"
        "ns/a        0        c        -                      -           removed: no longer "
        "fits pool p on c: its engines now need 2 nodes there (1 when placed) and the pool has "
        "0 more free\n"
        "ns/b        0        c        e=p                    Node        kept\n",
    )
    code, out, _ = run(capsys, "explain", "md/a", "-n", "ns", "-f", str(tmp_path))
    assert out.splitlines()[1:] == [
        "replica 0 (a-d-0) on d: placed on d: it hosted the fewest replicas of this deployment "
        '(0) among 2 eligible clusters; engine "e" on pool p (2 of 2 free nodes)',
        "replica 0 (a-c-0) on c is removed: no longer fits pool p on c: its engines now need "
        "2 nodes there (1 when placed) and the pool has 0 more free",
    ]


@pytest.mark.parametrize(
    "extra", ["", B_ALREADY_PLACED], ids=["a keeps its node", "a is re-placed on d"]
)
def test_the_yaml_of_an_edited_fleet_fed_back_is_byte_stable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: str
) -> None:
    (tmp_path / "fleet.yaml").write_text(STALE_COST + ("---\n" + extra if extra else ""))
    _, first, _ = run(capsys, "schedule", "-f", str(tmp_path), "-o", "yaml")
    fleet = [
        d
        for d in yaml.safe_load_all(STALE_COST + "---\n" + extra)
        if d and d["kind"] != "ModelReplica"
    ]
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump_all(fleet) + "---\n" + first)
    _, second, _ = run(capsys, "schedule", "-f", str(tmp_path), "-o", "yaml")
    assert second == first


@pytest.mark.parametrize(
    ("document", "error", "missing"),
    [
        (
            BAD_SELECTOR,
            "error: ModelDeployment ml-team/broken: spec.engines[0].members[0].nodeSelector"
            '.devices[0].selectors[0].cel: invalid selector of engine "e" member 0 (Standalone) '
            'device "gpu": ',
            "1 of 1 replicas are not placed until the error is fixed (placed ones are kept)",
        ),
        (
            BAD_SCHEMA.replace("replicas: -1", "replicas: 2"),
            "error: ModelDeployment ml-team/wrong: spec.engines: ",
            "2 of 2 replicas are not placed until the error is fixed (placed ones are kept)",
        ),
    ],
    ids=["an invalid CEL selector", "a spec the schema rejects"],
)
def test_explain_of_a_deployment_with_an_error_says_what_is_wrong_and_leaves_no_dangling_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, document: str, error: str, missing: str
) -> None:
    (tmp_path / "bad.yaml").write_text(document)
    name = yaml.safe_load(document)["metadata"]["name"]
    code, out, _ = run(capsys, "explain", f"md/{name}", "-n", "ml-team", "-f", str(EXAMPLES),
                       "-f", str(tmp_path))  # fmt: skip
    header, error_line, missing_line = out.splitlines()
    assert code == 2
    assert header.startswith(f"ModelDeployment ml-team/{name}: 0 of ")
    assert error_line.startswith(error)
    assert missing_line == missing
    _, table, _ = run(capsys, "schedule", "-f", str(EXAMPLES), "-f", str(tmp_path))
    assert f"ml-team/{name}: {missing}" in table.splitlines()
    assert not any(line.endswith(":") for line in table.splitlines() if name in line)
