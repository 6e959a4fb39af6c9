"""`modelplane schedule` and `explain` on a cluster whose status offers device accounting:
the ACCOUNTING column, and a misfit that says how many devices the best node had free."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from modelplane.cli.main import main


def gpu_deployment(name: str, gpus: int, replicas: int) -> dict[str, object]:
    template = {"spec": {"containers": [{"name": "engine", "image": "engine:1"}]}}
    request = {"name": "gpu", "count": gpus,
               "selectors": [{"cel": 'device.driver == "gpu.nvidia.com"'}]}  # fmt: skip
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"replicas": replicas, "engines": [{"name": "e", "members": [
            {"role": "Standalone", "nodeSelector": {"devices": [request]},
             "template": template}]}]},
    }  # fmt: skip


def cluster(name: str, accounting: str) -> dict[str, object]:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "InferenceCluster",
        "metadata": {"name": name},
        "spec": {
            "cluster": {"source": "Existing",
                        "existing": {"secretRef": {"name": f"{name}-kc", "key": "kubeconfig"}}},
            "nodePools": [{"name": "h100", "className": "h100x8", "nodeCount": 2}],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady",
                            "message": "ok", "lastTransitionTime": "2026-12-03T18:00:00Z"}],
            "gatewayAddress": "10.0.0.1",
            "schedulerExtension": {"health": "Healthy" if accounting == "Device" else "Absent",
                                   "accounting": accounting},
        },
    }  # fmt: skip


CLASS = {
    "apiVersion": "modelplane.ai/v1alpha1",
    "kind": "InferenceClass",
    "metadata": {"name": "h100x8"},
    "spec": {"devices": [{"name": "gpu", "driver": "gpu.nvidia.com",
                          "deviceClassName": "gpu.nvidia.com", "count": 8}]},
}  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, accounting: str, *args: str) -> str:
    documents = [CLASS, cluster("east", accounting), gpu_deployment("small", 2, 4),
                 gpu_deployment("big", 8, 1), gpu_deployment("six", 6, 1)]  # fmt: skip
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump_all(documents))
    main([*args, "-f", str(tmp_path / "fleet.yaml")])
    return capsys.readouterr().out


def test_the_table_says_device_accounting_and_the_worked_example_fits(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = run(capsys, tmp_path, "Device", "schedule", "-o", "table")
    rows = [line.split() for line in out.splitlines()[1:6]]
    assert [(r[0], r[2], r[4], r[5]) for r in rows] == [("ml/small", "east", "Device", "new")] * 4 + [("ml/big", "east", "Device", "new")]  # fmt: skip
    assert "ml/six: 1 of 1 replicas fit nowhere:" in out


def test_explain_says_how_many_devices_the_best_node_had_free(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = run(capsys, tmp_path, "Device", "explain", "md/six", "-n", "ml")
    assert out.splitlines()[-1] == (
        "  east: pool h100 (device accounting): a pod claiming 6 gpu.nvidia.com fits no node; "
        "the best node has 0 of 8 devices free"
    )
    placed = run(capsys, tmp_path, "Device", "explain", "md/small", "-n", "ml")
    assert "(device accounting: 1 pods, 2 devices" in placed


def test_without_the_extension_the_whole_node_rule_places_two(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = run(capsys, tmp_path, "Node", "schedule", "-o", "table")
    rows = [line.split() for line in out.splitlines()[1:] if line.startswith("ml/")]
    placed = [r for r in rows if not r[0].endswith(":")]  # not the notes below the table
    assert [(r[0], r[4]) for r in placed] == [("ml/small", "Node")] * 2
