"""The image pushes to a real registry (crane's, started here) and reads back unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelplane_imagebuild import build
from modelplane_localfleet import binaries
from modelplane_localfleet.components import CRANE

from tests.image.conftest import Built, build_env
from tests.registry import crane_output, crane_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crane() -> Path:
    return binaries.build(CRANE, binaries.default_cache()) / "crane"


@pytest.fixture(scope="module")
def registry(crane: Path) -> Iterator[str]:
    """`host:port` of an in-memory registry on a port the kernel picked."""
    with crane_registry(crane) as address:
        yield address


def test_the_pushed_image_reads_back_with_the_same_digest(
    image: Built, crane: Path, registry: str
) -> None:
    reference = f"{registry}/modelplane:test"
    pushed = build.push(crane, image.layout, reference)
    assert pushed == f"{registry}/modelplane@{image.digest}"
    assert crane_output(crane, "digest", reference).strip() == image.digest
    assert json.loads(crane_output(crane, "manifest", reference)) == image.manifest
    assert json.loads(crane_output(crane, "config", reference)) == image.config


def test_the_skaffold_builder_pushes_image(image: Built, crane: Path, registry: str) -> None:
    reference = f"{registry}/modelplane:skaffold"
    done = subprocess.run(
        [sys.executable, "-m", "modelplane_imagebuild", "--cache", str(image.cache), "skaffold"],
        env={**os.environ, **build_env(), "IMAGE": reference, "PUSH_IMAGE": "true"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pushed"] == f"{registry}/modelplane@{image.digest}"
    assert crane_output(crane, "digest", reference).strip() == image.digest
