"""skaffold.yaml works with the real skaffold (built from its Go module like the fleet's binaries).

`diagnose` reads the config; `render` produces the chart's objects with the image skaffold
tagged; `build` runs the custom builder (`tools/image skaffold`) and pushes to a real
registry (crane's, started here), and the registry then holds what skaffold reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane_localfleet import binaries
from modelplane_localfleet.components import CRANE, HELM, SKAFFOLD

from tests.chart.helm import render as helm_render
from tests.registry import crane_registry

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "modelplane-system"


@pytest.fixture(scope="module")
def tools() -> dict[str, Path]:
    """skaffold, helm and crane, built when missing (needs Go; CI=true fails without it)."""
    if shutil.which("go") is None and not (SKAFFOLD.entry(binaries.default_cache())).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI builds skaffold from its Go module: Go is missing")
        pytest.skip("skaffold is not built and Go is not installed")
    cache = binaries.default_cache()
    quiet = print if os.environ.get("CI") == "true" else (lambda _line: None)
    return {
        "skaffold": binaries.build(SKAFFOLD, cache, quiet) / "skaffold",
        "helm": binaries.build(HELM, cache, quiet) / "helm",
        "crane": binaries.build(CRANE, cache, quiet) / "crane",
    }


def skaffold(tools: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{tools['helm'].parent}{os.pathsep}{os.environ['PATH']}",
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_DISABLE_MONITORING": "true",
        "HELM_CACHE_HOME": "/tmp/modelplane-helm/cache",
        "HELM_CONFIG_HOME": "/tmp/modelplane-helm/config",
        "HELM_DATA_HOME": "/tmp/modelplane-helm/data",
    }
    return subprocess.run(
        [str(tools["skaffold"]), *args], cwd=ROOT, env=env, capture_output=True, text=True,
        check=False, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def registry(tools: dict[str, Path]) -> Iterator[str]:
    """`host:port` of an in-memory registry on a port the kernel picked."""
    with crane_registry(tools["crane"]) as address:
        yield address


def _objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_diagnose_reads_the_config_and_its_custom_builder(tools: dict[str, Path]) -> None:
    done = skaffold(tools, "diagnose")
    assert done.returncode == 0, done.stderr
    assert "Configuration version: skaffold/v4beta13" in done.stdout
    assert "Custom artifact: modelplane" in done.stdout
    assert "buildCommand: tools/image skaffold" in done.stdout


def test_render_gives_the_charts_objects_with_the_image_skaffold_tagged(
    tools: dict[str, Path],
) -> None:
    repo = "registry.example.test:5000"
    done = skaffold(
        tools, "render", "--offline=true", "--digest-source=tag", f"--default-repo={repo}",
        "-p", "local-fleet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rendered = _objects(done.stdout)
    images = {
        c["image"]
        for o in rendered
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert len(images) == 1, images
    image = images.pop()
    assert image.startswith(f"{repo}/modelplane:"), image
    # The same objects as `helm template` of the chart with that image (release
    # `modelplane` in modelplane-system, as skaffold.yaml names it).
    repository, tag = image.rsplit(":", 1)
    expected = helm_render(
        tools["helm"], f"image.repository={repository}", f"image.tag={tag}", release="modelplane"
    )
    assert sorted((o["kind"], o["metadata"]["name"]) for o in rendered) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in expected
    )
    # everything in the release namespace, but gateway-config's Role (and its binding) in
    # the API keys' own namespace
    placed = {(o["kind"], o["metadata"].get("namespace", NAMESPACE)) for o in rendered}
    assert {ns for _, ns in placed} == {NAMESPACE, "modelplane-api-keys"}
    assert {kind for kind, ns in placed if ns == "modelplane-api-keys"} <= {"Role", "RoleBinding"}


def test_build_runs_the_image_script_and_pushes_what_it_reports(
    tools: dict[str, Path], registry: str, tmp_path: Path
) -> None:
    output = tmp_path / "build.json"
    done = skaffold(
        tools, "build", f"--default-repo={registry}", f"--insecure-registry={registry}",
        "--cache-artifacts=false", f"--file-output={output}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    builds = json.loads(output.read_text())["builds"]
    assert [b["imageName"] for b in builds] == ["modelplane"]
    reference, _, digest = builds[0]["tag"].partition("@")
    assert reference.startswith(f"{registry}/modelplane:") and digest.startswith("sha256:")
    held = subprocess.run(
        [str(tools["crane"]), "digest", "--insecure", reference],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert held.returncode == 0, held.stderr
    assert held.stdout.strip() == digest
    config_text = subprocess.run(
        [str(tools["crane"]), "config", "--insecure", reference],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    config = json.loads(config_text)
    assert config["config"]["User"] == "65532:65532"
