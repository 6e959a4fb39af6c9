"""One cold build of the image per test session, shared by the image tests.

The build uses a fresh layer cache (the downloaded .deb files are shared with the
user's cache, as their hashes are checked), a fixed SOURCE_DATE_EPOCH and the
checkout's git revision.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from modelplane_imagebuild import build

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1700000000  # 2023-11-14T22:13:20Z
UV = build.uv_next_to_python()


@dataclass(frozen=True)
class Built:
    """A built image as the tests read it: from its OCI layout, not from the builder."""

    layout: Path
    digest: str
    manifest: dict[str, object]
    config: dict[str, object]
    cache: Path

    def blob(self, digest: str) -> Path:
        return self.layout / "blobs" / "sha256" / digest.removeprefix("sha256:")

    @property
    def layer_digests(self) -> list[str]:
        layers = self.manifest["layers"]
        assert isinstance(layers, list)
        return [layer["digest"] for layer in layers]


def read_layout(layout: Path, cache: Path) -> Built:
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"][7:]).read_text())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    return Built(layout, entry["digest"], manifest, config, cache)


def head_revision() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


def fresh_cache(path: Path) -> Path:
    """A layer cache of its own that shares the user's verified .deb downloads."""
    shared = build.default_cache() / "debs"
    shared.mkdir(parents=True, exist_ok=True)
    path.mkdir(parents=True)
    (path / "debs").symlink_to(shared)
    return path


def build_env() -> dict[str, str]:
    return {"SOURCE_DATE_EPOCH": str(EPOCH), "SOURCE_REVISION": head_revision()}


def cold_build(work: Path) -> Built:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in build_env().items():
            patch.setenv(name, value)
        cache = fresh_cache(work / "cache")
        build.build(ROOT, work / "layout", cache, UV, say=lambda _: None)
    return read_layout(work / "layout", cache)


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The image of this checkout."""
    return cold_build(tmp_path_factory.mktemp("image"))


def needs_root() -> None:
    """chroot needs root; under CI=true its absence is a failure, not a skip."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the image tests chroot into the image's root filesystem: run as root")
        pytest.skip("chroot needs root")


@pytest.fixture(scope="session")
def rootfs(image: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The image's layers unpacked in order (as root, so owners are kept)."""
    needs_root()
    root = tmp_path_factory.mktemp("rootfs")
    root.chmod(0o755)  # "/" as a container runtime makes it (pytest's folders are 0700)
    for digest in image.layer_digests:
        with tarfile.open(image.blob(digest), "r:gz") as layer:
            layer.extractall(root, numeric_owner=True, filter="fully_trusted")
    yield root
