"""Images from the fleet's registries: references, pull policy, pulling and the cache.

`Reference.parse` splits `host[:port]/repo[:tag][@sha256:...]`. `ImageStore`
pulls an image over the OCI distribution API (plain HTTP: fleet registries
only): the manifest (from an OCI index or Docker manifest list it takes the
`linux/amd64` entry), the config and the layers, each verified against its
sha256 digest before it is kept. Blobs live under `<root>/blobs/sha256/`, the
unpacked root filesystem of an image under `<root>/rootfs/<manifest hex>/`
(unpacked once, shared by every pod of the agent), and the digest a tag last
resolved to under `<root>/tags/`, so `IfNotPresent` needs no registry.
`imageID` is `<registry>/<repository>@sha256:<manifest digest>`, as kubelet
reports it. Anything a registry refuses is a `PullError` whose message says
what it answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from modelplane_localfleet import registry
from modelplane_localfleet.nodeagent import layers

PLATFORM = ("linux", "amd64")
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class PullError(Exception):
    """The image cannot be pulled; the message says why (what the registry answered)."""


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, image: str) -> Reference | None:
        """The reference's parts; None when it names no registry host (a Docker Hub name)."""
        rest, _, digest = image.partition("@")
        host, slash, path = rest.partition("/")
        if not slash or not ("." in host or ":" in host or host == "localhost"):
            return None
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            tag = last.split(":", 1)[1]
            path = path[: len(path) - len(tag) - 1]
        return cls(host, path, tag, digest or None)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def wanted(self) -> str:
        """What to ask the registry for: the digest, else the tag (`latest` when none)."""
        return self.digest or self.tag or "latest"


def fleet_reference(image: str) -> Reference | None:
    """The image's reference when a fleet registry serves it, else None (the runtime map)."""
    ref = Reference.parse(image)
    return ref if ref is not None and ref.registry in registry.FLEET_REGISTRIES else None


def pull_policy(container: dict[str, Any]) -> str:
    """`imagePullPolicy`, defaulted as the API server does: Always for `:latest` or no tag."""
    given = container.get("imagePullPolicy")
    if given:
        return str(given)
    ref = Reference.parse(str(container.get("image", "")))
    latest = ref is not None and ref.digest is None and ref.tag in (None, "latest")
    return "Always" if latest else "IfNotPresent"


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an image's config that decide how its process runs."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_blob(cls, data: dict[str, Any]) -> ImageConfig:
        config = data.get("config") or {}
        return cls(
            tuple(config.get("Entrypoint") or ()),
            tuple(config.get("Cmd") or ()),
            tuple(config.get("Env") or ()),
            str(config.get("WorkingDir") or ""),
            str(config.get("User") or ""),
        )


@dataclass(frozen=True, slots=True)
class Image:
    """A pulled image: its id, unpacked root filesystem and config."""

    reference: Reference
    digest: str
    rootfs: Path
    config: ImageConfig
    size: int

    @property
    def image_id(self) -> str:
        return f"{self.reference.name}@{self.digest}"


@dataclass
class ImageStore:
    """Pulled blobs and unpacked images under `root`, shared by the agent's pods."""

    root: Path
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def _blob(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def _tag_file(self, ref: Reference) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{ref.name}:{ref.tag or 'latest'}")
        return self.root / "tags" / safe

    def present(self, ref: Reference) -> Image | None:
        """The image as already pulled, without asking any registry."""
        digest = ref.digest
        if digest is None:
            with_tag = self._tag_file(ref)
            digest = with_tag.read_text().strip() if with_tag.exists() else None
        if digest is None or not self._blob(digest).exists():
            return None
        return self._local(ref, digest)

    def _local(self, ref: Reference, digest: str) -> Image | None:
        rootfs = self.root / "rootfs" / digest.removeprefix("sha256:")
        if not (rootfs / ".complete").exists():
            return None
        manifest = json.loads(self._blob(digest).read_bytes())
        config = json.loads(self._blob(manifest["config"]["digest"]).read_bytes())
        size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers") or [])
        return Image(ref, digest, rootfs, ImageConfig.from_blob(config), size)

    async def pull(self, ref: Reference) -> Image:
        """Resolve the reference at its registry and make sure its root filesystem exists."""
        async with httpx.AsyncClient(base_url=f"http://{ref.registry}", timeout=_TIMEOUT) as http:
            digest, manifest = await self._manifest(http, ref, ref.wanted)
            if _media_type(manifest) in INDEX_TYPES:
                chosen = _platform_entry(manifest, ref)
                digest, manifest = await self._manifest(http, ref, chosen)
            if _media_type(manifest) not in MANIFEST_TYPES:
                raise PullError(f"{ref.name}: unsupported manifest type {_media_type(manifest)!r}")
            lock = self._locks.setdefault(digest, asyncio.Lock())
            async with lock:
                image = self._local(ref, digest)
                if image is None:
                    await self._fetch_blob(http, ref, manifest["config"]["digest"])
                    paths = []
                    for layer in manifest.get("layers") or []:
                        if layer.get("mediaType") not in LAYER_TYPES:
                            raise PullError(
                                f"{ref.name}: unsupported layer type {layer.get('mediaType')!r}"
                            )
                        paths.append(await self._fetch_blob(http, ref, layer["digest"]))
                    rootfs = self.root / "rootfs" / digest.removeprefix("sha256:")
                    await asyncio.to_thread(layers.unpack_image, paths, rootfs)
                    image = self._local(ref, digest)
                    assert image is not None
        if ref.digest is None:
            _write_atomically(self._tag_file(ref), digest.encode())
        return image

    async def _manifest(
        self, http: httpx.AsyncClient, ref: Reference, wanted: str
    ) -> tuple[str, dict[str, Any]]:
        accept = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
        reply = await _get(http, f"/v2/{ref.repository}/manifests/{wanted}", accept, ref)
        body = reply.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if _DIGEST.match(wanted) and wanted != digest:
            raise PullError(f"{ref.name}: manifest {wanted} arrived with digest {digest}")
        try:
            manifest = json.loads(body)
        except ValueError as error:
            raise PullError(f"{ref.name}: the manifest for {wanted} is not JSON") from error
        manifest.setdefault("mediaType", reply.headers.get("content-type", "").split(";")[0])
        _write_atomically(self._blob(digest), body)
        return digest, manifest

    async def _fetch_blob(self, http: httpx.AsyncClient, ref: Reference, digest: str) -> Path:
        """Download a blob unless cached; refuse one whose content does not match its digest."""
        if not _DIGEST.match(digest):
            raise PullError(f"{ref.name}: unsupported digest {digest!r}")
        target = self._blob(digest)
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as out:
                try:
                    async with http.stream("GET", f"/v2/{ref.repository}/blobs/{digest}") as reply:
                        if reply.status_code != 200:
                            await reply.aread()
                            raise PullError(_refusal(ref, reply))
                        async for chunk in reply.aiter_bytes():
                            hasher.update(chunk)
                            out.write(chunk)
                except httpx.HTTPError as error:
                    raise PullError(f"{ref.registry}: {error or type(error).__name__}") from error
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest:
                raise PullError(f"{ref.name}: blob {digest} arrived with digest {actual}")
            os.replace(partial, target)
        finally:
            Path(partial).unlink(missing_ok=True)
        return target


def _media_type(manifest: dict[str, Any]) -> str:
    return str(manifest.get("mediaType") or "")


def _platform_entry(index: dict[str, Any], ref: Reference) -> str:
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == PLATFORM:
            return str(entry["digest"])
    offered = sorted(
        f"{(e.get('platform') or {}).get('os')}/{(e.get('platform') or {}).get('architecture')}"
        for e in index.get("manifests") or []
    )
    raise PullError(
        f"{ref.name}: no {'/'.join(PLATFORM)} image in the index (it has {', '.join(offered)})"
    )


async def _get(http: httpx.AsyncClient, path: str, accept: str, ref: Reference) -> httpx.Response:
    try:
        reply = await http.get(path, headers={"Accept": accept})
    except httpx.HTTPError as error:
        raise PullError(f"{ref.registry}: {error or type(error).__name__}") from error
    if reply.status_code != 200:
        raise PullError(_refusal(ref, reply))
    return reply


def _refusal(ref: Reference, reply: httpx.Response) -> str:
    """`<image>: <registry> answered 404 MANIFEST_UNKNOWN: ...` from the registry's errors."""
    detail = reply.text.strip()[:200]
    try:
        errors = json.loads(reply.content).get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or detail
    except (ValueError, AttributeError):
        pass
    return f"{ref.name}:{ref.wanted}: {ref.registry} answered {reply.status_code} {detail}".strip()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    partial.write_bytes(data)
    os.replace(partial, path)
