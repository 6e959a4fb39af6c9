"""What the image's config and layers hold: the user, the labels, no shell, normalised tars."""

from __future__ import annotations

import tarfile
import tomllib

import pytest

from tests.image.conftest import EPOCH, ROOT, Built, head_revision

pytestmark = pytest.mark.slow

SHELLS = {"sh", "bash", "dash", "ash", "busybox", "zsh"}


def _names(image: Built) -> list[str]:
    names = []
    for digest in image.layer_digests:
        with tarfile.open(image.blob(digest), "r:gz") as layer:
            names.extend(layer.getnames())
    return names


def test_the_config_runs_as_a_non_root_user_with_the_oci_labels(image: Built) -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    config = image.config["config"]
    assert isinstance(config, dict)
    assert config["User"] == "65532:65532"
    assert config["WorkingDir"] == "/home/nonroot"
    assert "PATH=/usr/local/bin:/usr/bin" in config["Env"]
    assert image.config["created"] == "2023-11-14T22:13:20Z"
    assert config["Labels"] == {
        "org.opencontainers.image.title": "modelplane",
        "org.opencontainers.image.description": project["description"],
        "org.opencontainers.image.source": "https://github.com/modelplaneai/modelplane",
        "org.opencontainers.image.version": project["version"],
        "org.opencontainers.image.revision": head_revision(),
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
    }


def test_there_is_no_shell_in_the_image(image: Built) -> None:
    names = _names(image)
    assert "usr/bin/python3.11" in names
    assert {n for n in names if n.rsplit("/", 1)[-1] in SHELLS} == set()


def test_the_layers_are_normalised_tars(image: Built) -> None:
    for digest in image.layer_digests:
        blob = image.blob(digest).read_bytes()
        assert blob[3] & 0x08 == 0, "gzip header carries no file name"
        assert blob[4:8] == b"\0\0\0\0", "gzip header mtime is 0"
        with tarfile.open(image.blob(digest), "r:gz") as layer:
            members = layer.getmembers()
        assert {m.mtime for m in members} == {EPOCH}
        assert [m.name for m in members if m.pax_headers] == []
        owned = {m.name: (m.uid, m.gid) for m in members if (m.uid, m.gid) != (0, 0)}
        assert owned in ({}, {"home/nonroot": (65532, 65532)})
        assert {m.uname for m in members} | {m.gname for m in members} == {""}


def test_the_manifest_sizes_are_the_blobs(image: Built) -> None:
    layers = image.manifest["layers"]
    assert isinstance(layers, list) and len(layers) == 3
    for layer in layers:
        assert image.blob(layer["digest"]).stat().st_size == layer["size"]
