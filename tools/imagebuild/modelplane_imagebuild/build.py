"""Builds the image from a source tree: layers (cached by their inputs), config, layout, push.

The Debian layer is keyed by the .deb lock and the third-party layer by the runtime part
of `requirements.lock` (each with this package's own source and the layer's timestamp),
so a change to the project's code rebuilds only the small top layer. Timestamps come from
`SOURCE_DATE_EPOCH` or else from git: each layer takes the time of the last commit that
touched its inputs, and the config and the top layer take the time of HEAD.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from modelplane_imagebuild import debs, oci, pydeps, rootfs
from modelplane_imagebuild.tarlayer import Layer, write_layer

DEB_LOCK = Path("tools/imagebuild/debs.lock")
SOURCE_URL = "https://github.com/modelplaneai/modelplane"
WORKING_DIR = "/" + rootfs.HOME
ENV = (
    "PATH=/usr/local/bin:/usr/bin",
    "LANG=C.UTF-8",
    "PYTHONDONTWRITEBYTECODE=1",  # the bytecode is in the image; the files are root's
    "PYTHONUNBUFFERED=1",  # logs reach the container runtime as they are written
)
CMD = ("/usr/local/bin/modelplane", "--help")
TREES = ("debian", "python", "modelplane")  # `trees`' folders, in layer order
Say = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """The image could not be built: the message names the input at fault."""


@dataclass(frozen=True)
class Built:
    """A built image: the layout, its digest, sizes and the console scripts it holds."""

    image: oci.Image
    layers: tuple[Layer, ...]
    scripts: tuple[str, ...]


def default_cache() -> Path:
    """`$MODELPLANE_CACHE/image` (default `${XDG_CACHE_HOME:-~/.cache}/modelplane/image`)."""
    base = os.environ.get("MODELPLANE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "modelplane"
    )
    return Path(base) / "image"


def _git(source: Path, *args: str) -> str | None:
    done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True,
                          check=False)  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def epoch(source: Path, *paths: str) -> int:
    """`SOURCE_DATE_EPOCH`, or the time of the last commit touching `paths` (else of HEAD)."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH")
    if fixed is not None:
        if not fixed.isdigit():
            raise ImageBuildError(f"SOURCE_DATE_EPOCH: expected seconds, got {fixed!r}")
        return int(fixed)
    found = _git(source, "log", "-1", "--format=%ct", "--", *paths) if paths else None
    found = found or _git(source, "log", "-1", "--format=%ct")  # paths not committed yet
    if found is None:
        raise ImageBuildError(f"{source}: no git history; set SOURCE_DATE_EPOCH")
    return int(found)


def revision(source: Path) -> str:
    """`SOURCE_REVISION`, or the git commit the source is at."""
    found = os.environ.get("SOURCE_REVISION") or _git(source, "rev-parse", "HEAD")
    if found is None:
        raise ImageBuildError(f"{source}: no git history; set SOURCE_REVISION")
    return found


def _builder_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cached_layer(
    cache: Path, kind: str, inputs: str, mtime: int, make: Callable[[Path], None],
    owners: dict[str, tuple[int, int]] | None = None, modes: dict[str, int] | None = None,
) -> Layer:  # fmt: skip
    """The layer `make` fills, reused from `cache` when its inputs were built before."""
    key = hashlib.sha256(f"{kind}\0{inputs}\0{mtime}\0{_builder_hash()}".encode()).hexdigest()
    blob, meta = cache / f"{kind}-{key}.tar.gz", cache / f"{kind}-{key}.json"
    if blob.exists() and meta.exists():
        fields = json.loads(meta.read_text())
        return Layer(**{**fields, "path": blob})
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        make(tree)
        layer = write_layer(tree, Path(scratch) / "layer.tar.gz", mtime, owners, modes)
        os.replace(layer.path, blob)
    layer = Layer(**{**asdict(layer), "path": blob})
    meta.write_text(json.dumps({**asdict(layer), "path": str(blob)}))
    return layer


def labels(source: Path, pyproject: dict[str, object], created: int) -> dict[str, str]:
    """The `org.opencontainers.image.*` labels."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    license_ = project.get("license", {})
    return {
        "org.opencontainers.image.title": str(project["name"]),
        "org.opencontainers.image.description": str(project.get("description", "")),
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.version": str(project["version"]),
        "org.opencontainers.image.revision": revision(source),
        "org.opencontainers.image.licenses": str(
            license_.get("text", "") if isinstance(license_, dict) else license_
        ),
        "org.opencontainers.image.created": oci.timestamp(created),
    }


def _timed(say: Say, what: str, step: Callable[[], Layer]) -> Layer:
    started = time.monotonic()
    layer = step()
    seconds = time.monotonic() - started
    sizes = f"{layer.size / 1e6:.1f} MB ({layer.uncompressed_size / 1e6:.1f} MB unpacked)"
    say(f"{what}: {layer.digest[:19]} {sizes} in {seconds:.1f}s")
    return layer


def build(source: Path, output: Path, cache: Path, uv: Path, say: Say = print) -> Built:
    """Builds the image of the source tree `source` as an OCI layout at `output`."""
    pyproject = pydeps.load_pyproject(source / "pyproject.toml")
    lock_path = source / DEB_LOCK
    pinned = debs.read_lock(lock_path)
    requirements = pydeps.runtime_lock((source / "requirements.lock").read_text(), pyproject)
    created = epoch(source)
    layers_cache = cache / "layers"

    def system() -> Layer:
        packages = debs.fetch(pinned, cache / "debs")
        return cached_layer(
            layers_cache, "debian", lock_path.read_text(), epoch(source, str(DEB_LOCK)),
            lambda tree: rootfs.system_tree(packages, tree),
            rootfs.SYSTEM_OWNERS, rootfs.SYSTEM_MODES,
        )  # fmt: skip

    def third_party() -> Layer:
        inputs = f"{pydeps.PYTHON_PLATFORM}\0{requirements}"
        return cached_layer(
            layers_cache, "python", inputs, epoch(source, "requirements.lock"),
            lambda tree: rootfs.third_party_tree(uv, requirements, tree),
        )  # fmt: skip

    scripts: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:

        def app() -> Layer:
            tree = Path(scratch) / "tree"
            tree.mkdir()
            scripts.extend(rootfs.app_tree(uv, source, tree))
            return write_layer(tree, Path(scratch) / "app.tar.gz", created)

        made = (
            (_timed(say, "debian runtime layer", system), "debian bookworm python3.11 runtime"),
            (_timed(say, "python packages layer", third_party), "requirements.lock (runtime)"),
            (_timed(say, "modelplane layer", app), "modelplane wheel and console scripts"),
        )
        spec = oci.ImageSpec(
            created=created, user=f"{rootfs.UID}:{rootfs.UID}", working_dir=WORKING_DIR,
            env=ENV, cmd=CMD, labels=labels(source, pyproject, created),
        )  # fmt: skip
        image = oci.write_layout(output, spec, made)
    return Built(image, tuple(layer for layer, _ in made), tuple(scripts))


def push(crane: Path, layout: Path, reference: str, insecure: bool = False) -> str:
    """Pushes the layout's image to `reference`; returns the pushed reference with digest."""
    with tempfile.TemporaryDirectory() as scratch:
        refs = Path(scratch) / "refs"
        command = [str(crane), "push", str(layout), reference, "--image-refs", str(refs)]
        done = subprocess.run(command + (["--insecure"] if insecure else []),
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise ImageBuildError(f"crane push {reference}: {done.stderr.strip()}")
        return refs.read_text().strip()


def uv_next_to_python() -> Path:
    """The uv of the environment running the builder (tools/install puts it there)."""
    uv = Path(sys.executable).parent / "uv"
    found = uv if uv.exists() else shutil.which("uv")
    if not found:
        raise ImageBuildError(f"uv: not beside {sys.executable} nor on PATH")
    return Path(found)


def trees(source: Path, output: Path, cache: Path, uv: Path) -> None:
    """Writes the three layer trees as folders (`TREES`) under `output`, with the image's
    owners and modes, for a Containerfile to copy."""
    pyproject = pydeps.load_pyproject(source / "pyproject.toml")
    packages = debs.fetch(debs.read_lock(source / DEB_LOCK), cache / "debs")
    requirements = pydeps.runtime_lock((source / "requirements.lock").read_text(), pyproject)
    system, third_party, app = (output / name for name in TREES)
    for tree in (system, third_party, app):
        tree.mkdir(parents=True)
    rootfs.system_tree(packages, system)
    rootfs.third_party_tree(uv, requirements, third_party)
    rootfs.app_tree(uv, source, app)
    for relative, (uid, gid) in rootfs.SYSTEM_OWNERS.items():
        os.chown(system / relative, uid, gid)
    for relative, mode in rootfs.SYSTEM_MODES.items():
        (system / relative).chmod(mode)
