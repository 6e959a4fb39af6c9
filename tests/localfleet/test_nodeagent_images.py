"""Pulling and unpacking images against a real registry (`crane registry serve`).

Images are built with crane itself (`append`, `mutate`, `index append`), so
what the store must find (digests, platforms, config) comes from crane, not
from the code under test.
"""

from __future__ import annotations

import asyncio
import http.server
import io
import os
import socket
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from modelplane_localfleet.binaries import default_cache
from modelplane_localfleet.components import CRANE
from modelplane_localfleet.nodeagent import layers
from modelplane_localfleet.nodeagent.images import Image, ImageStore, PullError, Reference
from modelplane_localfleet.nodeagent.pulls import ImagePulls

from tests.registry import crane_output

CRANE_BINARY = CRANE.entry(default_cache()) / "crane"

Entry = tuple[str, str | None]  # name, content (None: a directory); "a -> b" is a symlink


def layer_tar(path: Path, entries: list[Entry]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if " -> " in name:
                info.name, info.linkname = name.split(" -> ")
                info.type = tarfile.SYMTYPE
                archive.addfile(info)
            elif content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = content.encode()
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return path


@dataclass
class Registry:
    address: str
    disk: Path
    work: Path

    def crane(self, *args: str) -> str:
        return crane_output(CRANE_BINARY, "--insecure", *args, timeout=60)

    def push(self, name: str, *layer_entries: list[Entry], **mutate: str) -> str:
        """Push an image of these layers; its reference."""
        ref = f"{self.address}/{name}"
        files = []
        for i, entries in enumerate(layer_entries):
            files += [
                "-f",
                str(layer_tar(self.work / f"{name.replace('/', '_')}-{i}.tgz", entries)),
            ]
        self.crane("append", "--oci-empty-base", *files, "-t", ref)
        flags = [f"--{flag.replace('_', '-')}={value}" for flag, value in mutate.items()]
        if flags:
            self.crane("mutate", ref, *flags, "-t", ref)
        return ref


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if not CRANE_BINARY.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"crane is missing at {CRANE_BINARY}: CI builds the fleet's binaries first")
        pytest.skip(f"crane not built ({CRANE_BINARY}); run modelplane-localfleet build")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    disk = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(CRANE_BINARY), "registry", "serve", f"--address={address}", f"--disk={disk}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield Registry(address, disk, tmp_path_factory.mktemp("layers"))
    finally:
        server.terminate()
        server.wait(10)


def pull(store_dir: Path, ref: str) -> Image:
    parsed = Reference.parse(ref)
    assert parsed is not None
    return asyncio.run(ImageStore(store_dir).pull(parsed))


def test_layers_apply_in_order_with_whiteouts_and_opaque_directories(
    registry: Registry, tmp_path: Path
) -> None:
    ref = registry.push(
        "test/whiteouts:v1",
        [
            ("etc", None), ("etc/keep", "kept"), ("etc/gone", "deleted above"),
            ("data", None), ("data/old", "hidden by the opaque marker"),
            ("usr", None), ("usr/lib", None), ("lib -> usr/lib", None),
        ],
        [("etc/.wh.gone", ""), ("data", None), ("data/.wh..wh..opq", ""),
         ("data/new", "new"), ("lib/libx.so", "through the symlink")],
        entrypoint="/bin/server", cmd="--flag", workdir="/srv", user="app", env="A=1",
    )  # fmt: skip
    image = pull(tmp_path, ref)
    root = image.rootfs
    assert (root / "etc" / "keep").read_text() == "kept"
    assert not (root / "etc" / "gone").exists()
    assert sorted(p.name for p in (root / "data").iterdir()) == ["new"]
    assert (root / "usr" / "lib" / "libx.so").read_text() == "through the symlink"
    assert os.readlink(root / "lib") == "usr/lib"
    assert image.image_id == f"{registry.address}/test/whiteouts@{registry.crane('digest', ref)}"
    config = image.config
    assert (config.entrypoint, config.cmd, config.working_dir, config.user) == (
        ("/bin/server",),
        ("--flag",),
        "/srv",
        "app",
    )
    assert "A=1" in config.env
    again = ImageStore(tmp_path).present(Reference.parse(ref))  # type: ignore[arg-type]
    assert again is not None and again.rootfs == root


class Tampering(http.server.BaseHTTPRequestHandler):
    """Relays GETs to the real registry, flipping one byte of every blob it serves
    (as a broken mirror or a disk error would); the real registry verifies its own disk."""

    upstream = ""

    def do_GET(self) -> None:
        request = urllib.request.Request(f"http://{self.upstream}{self.path}")
        if self.headers.get("Accept"):
            request.add_header("Accept", self.headers["Accept"])
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = bytearray(reply.read())
            kind = reply.headers.get("Content-Type", "application/octet-stream")
        if "/blobs/" in self.path and body:
            body[-1] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_blob_whose_content_does_not_match_its_digest_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    registry.push("test/corrupt:v1", [("file", "original content")])
    handler = type("Relay", (Tampering,), {"upstream": registry.address})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        relay = f"127.0.0.1:{server.server_address[1]}"
        with pytest.raises(
            PullError, match=r"blob sha256:[0-9a-f]{64} arrived with digest sha256:"
        ):
            pull(tmp_path, f"{relay}/test/corrupt:v1")
    finally:
        server.shutdown()
    assert not (tmp_path / "rootfs").exists()
    assert not list((tmp_path / "blobs" / "sha256").glob("[!.]*"))[1:], "only the manifest kept"


def test_an_entry_climbing_out_of_the_root_is_refused(registry: Registry, tmp_path: Path) -> None:
    ref = registry.push("test/escape:v1", [("a", None), ("a/../../outside", "escaped")])
    with pytest.raises(layers.LayerError, match="escapes the root"):
        pull(tmp_path / "store", ref)
    assert not (tmp_path / "outside").exists()
    assert not list(tmp_path.rglob("outside"))


def test_a_symlink_out_of_the_root_is_followed_inside_it(
    registry: Registry, tmp_path: Path
) -> None:
    target = tmp_path / "host"
    ref = registry.push(
        "test/symlink:v1",
        [(f"link -> ../../../../..{target}", None)],
        [("link/planted", "stays in the image")],
    )
    image = pull(tmp_path / "store", ref)
    assert not target.exists()
    assert (image.rootfs / str(target).lstrip("/") / "planted").read_text() == "stays in the image"


def test_an_index_gives_its_linux_amd64_image(registry: Registry, tmp_path: Path) -> None:
    arm = registry.push("test/multi:arm", [("arch", "arm64")], set_platform="linux/arm64")
    amd = registry.push("test/multi:amd", [("arch", "amd64")], set_platform="linux/amd64")
    index = f"{registry.address}/test/multi:v1"
    registry.crane("index", "append", "-m", arm, "-m", amd, "-t", index)
    image = pull(tmp_path, index)
    assert (image.rootfs / "arch").read_text() == "amd64"
    assert image.digest == registry.crane("digest", amd)

    only_arm = f"{registry.address}/test/multi:arm-only"
    registry.crane("index", "append", "-m", arm, "-t", only_arm)
    with pytest.raises(PullError, match=r"no linux/amd64 image in the index .*linux/arm64"):
        pull(tmp_path, only_arm)


def test_an_image_the_registry_lacks_fails_with_its_answer(
    registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(PullError, match=r"answered 404 (NAME|MANIFEST)_UNKNOWN"):
        pull(tmp_path, f"{registry.address}/test/never-pushed:v1")


def test_an_unreachable_registry_fails_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PullError, match=f"127.0.0.1:{port}: .*"):
        pull(tmp_path, f"127.0.0.1:{port}/test/nothing:v1")


class Recorder:
    """What a pod worker would show: events, the container's waiting states, the sleeps."""

    def __init__(self, store: ImageStore) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.states: list[tuple[str, str]] = []
        self.sleeps: list[float] = []
        self.pulls = ImagePulls(store, self.event, self.waiting, self.sleep, asyncio.Event())

    async def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def waiting(self, name: str, reason: str, message: str) -> None:
        self.states.append((reason, message))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def image(self, container: dict[str, str]) -> Image | None:
        reference = Reference.parse(container["image"])
        assert reference is not None
        return asyncio.run(self.pulls.image(container, reference))


def test_a_failed_pull_shows_err_image_pull_then_backs_off_doubling(
    registry: Registry, tmp_path: Path
) -> None:
    image = f"{registry.address}/test/absent:v1"
    recorder = Recorder(ImageStore(tmp_path))
    for _ in range(7):
        assert recorder.image({"name": "c", "image": image}) is None
    assert [reason for reason, _ in recorder.states[:2]] == ["ErrImagePull", "ImagePullBackOff"]
    assert recorder.states[0][1].startswith(f'Failed to pull image "{image}": ')
    assert "answered 404" in recorder.states[1][1]
    waited = [a + b for a, b in zip(recorder.sleeps[::2], recorder.sleeps[1::2], strict=True)]
    assert waited == [10, 20, 40, 80, 160, 300, 300]
    assert [reason for _, reason, _ in recorder.events[:6]] == [
        "Pulling", "Failed", "Failed", "BackOff", "Failed", "Pulling",
    ]  # fmt: skip
    assert ("Warning", "Failed", "Error: ErrImagePull") in recorder.events
    assert ("Normal", "BackOff", f'Back-off pulling image "{image}"') in recorder.events


def test_pull_policy_decides_whether_the_registry_is_asked(
    registry: Registry, tmp_path: Path
) -> None:
    ref = registry.push("test/policy:v1", [("version", "one")])
    recorder = Recorder(ImageStore(tmp_path))
    never = recorder.image({"name": "c", "image": ref, "imagePullPolicy": "Never"})
    assert never is None and recorder.states[-1][0] == "ErrImageNeverPull"
    first = recorder.image({"name": "c", "image": ref, "imagePullPolicy": "IfNotPresent"})
    assert first is not None and recorder.events[-1][1] == "Pulled"
    registry.push("test/policy:v1", [("version", "two")])
    kept = recorder.image({"name": "c", "image": ref, "imagePullPolicy": "IfNotPresent"})
    assert kept is not None and (kept.rootfs / "version").read_text() == "one"
    assert recorder.events[-1][2] == f'Container image "{ref}" already present on machine'
    fresh = recorder.image({"name": "c", "image": ref, "imagePullPolicy": "Always"})
    assert fresh is not None and (fresh.rootfs / "version").read_text() == "two"
    assert fresh.digest == registry.crane("digest", ref)
