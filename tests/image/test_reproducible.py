"""The same source gives the same image; a code change rebuilds only the top layer.

The second build runs through `tools/image`'s command line on a copy of the checkout in
another folder, as skaffold's custom builder would run it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from modelplane_imagebuild import pydeps

from tests.image.conftest import ROOT, Built, build_env, cold_build, read_layout

pytestmark = pytest.mark.slow


def test_a_second_cold_build_gives_the_same_digest(image: Built, tmp_path: Path) -> None:
    again = cold_build(tmp_path)
    assert again.cache != image.cache
    assert again.layer_digests == image.layer_digests
    assert again.digest == image.digest


def _cli_build(source: Path, cache: Path, output: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "modelplane_imagebuild", "--source", str(source),
         "--cache", str(cache), "build", "--output", str(output)],
        env={**os.environ, **build_env()}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def test_a_code_change_rebuilds_only_the_top_layer(image: Built, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=pydeps.NOT_SOURCE)

    same = _cli_build(source, image.cache, tmp_path / "same")
    assert same["digest"] == image.digest, "the same source in another folder"
    layout = read_layout(tmp_path / "same", image.cache)
    config = layout.manifest["config"]
    assert isinstance(config, dict)
    blobs = [layout.blob(digest) for digest in [*layout.layer_digests, config["digest"]]]
    assert same["compressed_bytes"] == sum(blob.stat().st_size for blob in blobs)

    init = source / "lib" / "modelplane" / "__init__.py"
    init.write_text(init.read_text() + "# a code-only change\n")
    _cli_build(source, image.cache, tmp_path / "changed")
    changed = read_layout(tmp_path / "changed", image.cache)
    assert changed.layer_digests[:2] == image.layer_digests[:2]  # Debian, third-party
    assert changed.layer_digests[2] != image.layer_digests[2]  # the project's wheel
    assert changed.digest != image.digest
