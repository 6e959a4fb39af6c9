"""The project installs as a wheel: the services import and `modelplane` validates and
schedules from an installed copy, with the CRDs as package data, not from the checkout.

Builds the wheel with uv (as `tools/install` gets it), installs it into a fresh virtual
environment with the pinned dependencies, and runs it from a folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"
SERVICES = (
    "fleet_scheduler",
    "cluster_provisioner",
    "endpoint_manager",
    "gateway_config",
    "scheduler_extender",
    "pd_router",
    "activator",
)

INVALID = """\
apiVersion: modelplane.ai/v1alpha1
kind: ModelDeployment
metadata: {name: bad, namespace: ml-team}
spec:
  replicas: 1
  engines:
  - name: e
    members:
    - role: Worker
      worker: {nodes: 1}
      nodeSelector: {devices: [{name: gpu}]}
      template: {}
"""


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin/` folder of a fresh environment holding only the wheel and the lock."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run(UV, "build", "--wheel", "--out-dir", work / "dist", ROOT, cwd=work)
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("modelplane-*.whl")
    venv = work / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    for step in (
        (UV, "pip", "install", "--quiet", "--python", python, "--require-hashes", "-r",
         ROOT / "requirements.lock"),
        (UV, "pip", "install", "--quiet", "--python", python, "--no-deps", wheel),
    ):  # fmt: skip
        done = _run(*step, cwd=work)
        assert done.returncode == 0, done.stderr
    return venv / "bin"


def test_every_service_imports_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    probe = "; ".join(
        [f"import {m}.__main__" for m in SERVICES]
        + ["import modelplane, json", f"print(json.dumps([modelplane.__file__, {list(SERVICES)}]))"]
    )
    done = _run(installed / "python", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where = Path(json.loads(done.stdout)[0])
    assert installed.parent in where.parents, f"modelplane came from {where}, not the wheel"


def test_the_installed_command_schedules_the_example_fleet(installed: Path, tmp_path: Path) -> None:
    done = _run(installed / "modelplane", "schedule", "-f", ROOT / "examples" / "fleet",
                "-o", "json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    placed = {d["name"]: len(d["replicas"]) for d in json.loads(done.stdout)["deployments"]}
    # chat-small spreads over the three clusters; coder-gang's gang takes eu-central's two
    # H100 nodes, so chat-large (40 GiB, compute capability above 8.0) fits nowhere.
    assert placed == {"chat-small": 3, "coder-gang": 1, "chat-large": 0}, placed


def test_the_installed_command_validates_with_the_packaged_crds(
    installed: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(INVALID)
    done = _run(installed / "modelplane", "schedule", "-f", manifest, "-o", "json", cwd=tmp_path)
    assert done.returncode == 2
    (report,) = json.loads(done.stdout)["deployments"]
    assert report["error"].startswith("ModelDeployment ml-team/bad: spec.engines[0]"), report


def test_the_installed_hydration_job_runs_with_its_pinned_client(
    installed: Path, tmp_path: Path
) -> None:
    # Nothing listens on port 9 (discard): the job gets as far as asking the hub.
    done = _run(installed / "modelplane-hydrate", "--repo", "acme/model", "--dir", tmp_path / "c",
                "--endpoint", "http://127.0.0.1:9", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    status = json.loads((tmp_path / "c" / ".modelplane" / "status.json").read_text())
    assert status["phase"] == "Failed"
    assert status["message"].startswith("cannot reach the hub at http://127.0.0.1:9 (HF_ENDPOINT)")
