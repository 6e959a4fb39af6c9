"""The OCI image config, manifest and image layout of the built layers.

`write_layout` puts the layer blobs, the config and the manifest into an OCI image
layout folder (`oci-layout`, `index.json`, `blobs/sha256/`), which `crane push` reads.
Every field is derived from its arguments, so equal inputs give equal digests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from modelplane_imagebuild.tarlayer import Layer

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class ImageSpec:
    """What the config says about the image besides its layers."""

    created: int  # seconds since the epoch
    user: str
    working_dir: str
    env: tuple[str, ...]
    cmd: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    """A written layout: the manifest's digest and the sizes of what it references."""

    layout: Path
    digest: str
    compressed_size: int
    uncompressed_size: int


def timestamp(seconds: int) -> str:
    """RFC 3339 in UTC, as image configs carry it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def config(spec: ImageSpec, layers: Sequence[tuple[Layer, str]]) -> dict[str, object]:
    """The image config; `layers` pairs each layer with the history line that made it."""
    created = timestamp(spec.created)
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": spec.user,
            "WorkingDir": spec.working_dir,
            "Env": list(spec.env),
            "Cmd": list(spec.cmd),
            "Labels": dict(spec.labels),
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer, _ in layers]},
        "history": [{"created": created, "created_by": why} for _, why in layers],
    }


def write_layout(out: Path, spec: ImageSpec, layers: Sequence[tuple[Layer, str]]) -> Image:
    """Writes an OCI image layout holding one image made of `layers` at `out`."""
    shutil.rmtree(out, ignore_errors=True)
    (out / "blobs" / "sha256").mkdir(parents=True)
    for layer, _ in layers:
        shutil.copyfile(layer.path, out / "blobs" / "sha256" / layer.digest.split(":")[1])
    config_bytes = _canonical(config(spec, layers))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": CONFIG,
            "digest": _blob(out, config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": LAYER, "digest": layer.digest, "size": layer.size} for layer, _ in layers
        ],
        "annotations": {"org.opencontainers.image.created": timestamp(spec.created)},
    }
    manifest_bytes = _canonical(manifest)
    digest = _blob(out, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": MANIFEST, "digest": digest, "size": len(manifest_bytes)}],
    }
    (out / "index.json").write_bytes(_canonical(index))
    (out / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
    return Image(
        layout=out,
        digest=digest,
        compressed_size=len(config_bytes) + sum(layer.size for layer, _ in layers),
        uncompressed_size=sum(layer.uncompressed_size for layer, _ in layers),
    )
