"""The real `helm` for chart tests: built from its Go module by the local fleet's build.

`helm_binary` returns the cached binary (building it when missing: needs Go; without
Go the caller skips locally and fails under CI=true). `render` runs `helm template`
on charts/modelplane and parses every object; `template_error` runs it expecting a
refusal and returns helm's message. Test-only helper: it may use subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane_localfleet.binaries import build, default_cache
from modelplane_localfleet.components import HELM

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelplane"
RELEASE = "mp"
NAMESPACE = "modelplane-system"
SERVICES = (
    "cluster-provisioner",
    "fleet-scheduler",
    "endpoint-manager",
    "gateway-config",
    "cache-hydrator",
    "activator",
)


def helm_binary() -> Path:
    """The helm binary; skips (fails under CI=true) when it cannot be built for want of Go."""
    entry = HELM.entry(default_cache())
    if not (entry / "helm").exists() and shutil.which("go") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI requires Go to build helm for the chart tests")
        pytest.skip("helm is not built and Go is not installed")
    return build(HELM, default_cache(), say=lambda _line: None) / "helm"


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/modelplane-helm/cache",
           "HELM_CONFIG_HOME": "/tmp/modelplane-helm/config",
           "HELM_DATA_HOME": "/tmp/modelplane-helm/data"}  # fmt: skip
    return subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, check=False)


def template_args(*sets: str, namespace: str = NAMESPACE, release: str = RELEASE) -> list[str]:
    out = ["template", release, str(CHART), "--namespace", namespace]
    for value in sets:
        out += ["--set", value]
    return out


def render(
    helm: Path, *sets: str, namespace: str = NAMESPACE, release: str = RELEASE
) -> list[dict[str, Any]]:
    """Every object `helm template` renders with `sets` (each `path=value`)."""
    result = run_helm(helm, *template_args(*sets, namespace=namespace, release=release))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def template_error(helm: Path, *sets: str) -> str:
    """helm's message refusing to render with `sets`; fails the test if it renders."""
    result = run_helm(helm, *template_args(*sets))
    assert result.returncode != 0, f"helm rendered with {sets}"
    return result.stderr


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
