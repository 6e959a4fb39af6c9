"""Builds the local fleet's components from the Go module proxy, once per version, into a cache.

A component (see `components`) lands in `$MODELPLANE_CACHE/localfleet/<name>-<version>/`
(default `${XDG_CACHE_HOME:-~/.cache}/modelplane`). Guarantees:

- Only what is missing is built. An entry is complete once its `.complete` marker
  exists and records the entry's fingerprint (the recipe plus the wrapper's go.mod
  and go.sum), so a changed wrapper rebuilds and an interrupted build is redone.
- A build happens in a `.partial` folder renamed into place after every binary
  ran its version check and every manifest was copied, so a reader never sees a
  half-built entry; a lock file keeps two builds of one component apart.
- Free disk is checked before a cold build, for the cache and Go's module and
  build caches (which stay where `go env` puts them), with a message that says
  how much is needed, how much is free, and where.
- Each stage's time goes to `say`.
- A component with a `trim` (KEDA) is built from a trimmed copy of its upstream
  source (see `trim`), in `.<entry>.source/` beside the entry, deleted afterwards.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from modelplane_localfleet.components import (
    COMPONENTS,
    ETCD,
    GATEWAY_API,
    GIB,
    KUBERNETES,
    LWS,
    Check,
    Component,
    Manifests,
)
from modelplane_localfleet.trim import SourceTrim, TrimError, prepare

__all__ = ["COMPONENTS", "ETCD", "GATEWAY_API", "KUBERNETES", "LWS", "build", "default_cache"]

MARKER = ".complete"
PROGRESS_EVERY = 20.0  # seconds between "still running" lines of a long build
Say = Callable[[str], None]


class BuildError(RuntimeError):
    """A build step failed; the message names the step and ends with Go's output."""


class DiskSpaceError(BuildError):
    """Not enough free disk for a cold build."""


@dataclass(frozen=True, slots=True)
class Need:
    """`size` bytes a cold build will write under `path`, described as `what`."""

    what: str
    path: Path
    size: int


def default_cache() -> Path:
    explicit = os.environ.get("MODELPLANE_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelplane"


def fingerprint(component: Component) -> str:
    """A key that changes when anything that shapes the entry changes."""
    ignored = ("go_dir", "disk", "carries_replaces", "fleet_needs")
    recipe = {k: v for k, v in asdict(component).items() if k not in ignored}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode())
    for name in ("go.mod", "go.sum"):
        path = component.module_dir / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def complete(component: Component, cache: Path) -> bool:
    marker = component.entry(cache) / MARKER
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("fingerprint") == fingerprint(component)


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_disk(needs: Sequence[Need], what: str) -> None:
    """Raise `DiskSpaceError` when a file system holds less free space than `needs` add up to."""
    by_device: dict[int, list[Need]] = {}
    for need in needs:
        by_device.setdefault(os.stat(_existing(need.path)).st_dev, []).append(need)
    for group in by_device.values():
        probe = _existing(group[0].path)
        free = shutil.disk_usage(probe).free
        needed = sum(need.size for need in group)
        if free < needed:
            parts = ", ".join(f"{n.what} {n.size / GIB:.1f} GiB in {n.path}" for n in group)
            raise DiskSpaceError(
                f"not enough free disk for a cold build of {what}: the file system of {probe} "
                f"needs about {needed / GIB:.1f} GiB ({parts}) and only {free / GIB:.1f} GiB "
                "is free. Free some space, or point MODELPLANE_CACHE, GOMODCACHE and GOCACHE "
                "at a larger disk."
            )


def go_env() -> dict[str, str]:
    """`go env` values the build reports and checks (module and build cache, Go version)."""
    if shutil.which("go") is None:
        raise BuildError("the local fleet is built from source with Go 1.26: `go` is not on PATH")
    result = _run(["go", "env", "-json", "GOMODCACHE", "GOCACHE", "GOVERSION"], Path.cwd(), "")
    values: dict[str, str] = json.loads(result)
    return values


def disk_needs(component: Component, cache: Path, env: dict[str, str]) -> list[Need]:
    return [
        Need("cache entry", cache / "localfleet", component.disk.entry),
        Need("Go module cache", Path(env["GOMODCACHE"]), component.disk.modules),
        Need("Go build cache", Path(env["GOCACHE"]), component.disk.build_cache),
    ]


def _run(command: list[str], cwd: Path, step: str, progress: Progress | None = None) -> str:
    """Run a Go command; with `progress`, each line it prints on stderr (`go build -v`:
    a package being compiled) is passed on as it comes."""
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off"}
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        stdout, stderr = process.stdout, process.stderr
        assert stdout is not None and stderr is not None
        stdout_chunks: list[str] = []
        reader = threading.Thread(target=lambda: stdout_chunks.append(stdout.read()))
        reader.start()
        stderr_lines: list[str] = []
        for line in stderr:
            stderr_lines.append(line)
            if progress is not None:
                progress.saw(line.strip())
        reader.join()
        returncode = process.wait()
    if returncode != 0:
        # `-v` lists each package compiled (a bare import path); the error is the rest.
        errors = "".join(line for line in stderr_lines if " " in line.strip() or ":" in line)
        raise BuildError(f"{step or command[0]} failed ({' '.join(command)}):\n{errors[-4000:]}")
    return "".join(stdout_chunks)


class Progress:
    """What a long stage is doing: the last line its command printed, said every `every`
    seconds with the time elapsed and, when `total` is known (the packages the build
    imports), how many of them, so a cold build (minutes) never looks stuck."""

    def __init__(self, say: Say, label: str, every: float, total: int | None = None) -> None:
        self.say, self.label, self.every, self.total = say, label, every, total
        self.started = time.monotonic()
        self.latest = ""
        self.count = 0
        self._done = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def saw(self, line: str) -> None:
        if line:
            self.latest = line
            self.count += 1

    def _tick(self) -> None:
        while not self._done.wait(self.every):
            elapsed = time.monotonic() - self.started
            of = f" of {self.total}" if self.total else ""
            doing = f", {self.count}{of} packages so far, now {self.latest}" if self.latest else ""
            self.say(f"{self.label}: still running after {elapsed:.0f}s{doing}")

    def __enter__(self) -> Progress:
        self._ticker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._ticker.join()


@contextmanager
def _stage(say: Say, prefix: str, label: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    say(f"{prefix}: {label} {time.monotonic() - started:.1f}s")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_command(component: Component, out: Path, modfile: Path | None = None) -> list[str]:
    """One `go build` for all binaries: packages compile once, links run side by side.
    `modfile`: the go.mod to build with instead of the wrapper's (a trimmed source)."""
    command = ["go", "build", "-trimpath"]
    if modfile is not None:
        command.append(f"-modfile={modfile}")
    if component.tags:
        command += ["-tags", component.tags]
    command += ["-ldflags", component.ldflags]
    if len(component.binaries) == 1:
        return [
            *command,
            "-o",
            str(out / component.binaries[0].name),
            component.binaries[0].package,
        ]
    for binary in component.binaries:
        if binary.package.rsplit("/", 1)[-1] != binary.name:
            raise ValueError(f"{binary.package} does not build a file named {binary.name}")
    return [*command, "-o", f"{out}/", *(binary.package for binary in component.binaries)]


def run_check(path: Path, check: Check) -> None:
    """Run the binary as `check` says; raise `BuildError` unless it exits 0 printing `expect`."""
    result = subprocess.run(
        [str(path), *check.args], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 or check.expect not in output:
        raise BuildError(
            f"{path.name} {' '.join(check.args)} exited {result.returncode} without printing "
            f"{check.expect!r}:\n{output[-2000:]}"
        )


def copy_manifests(component: Component, manifests: Manifests, out: Path) -> list[Path]:
    """Copy YAML from the module as the wrapper pins it (verified against its go.sum)."""
    listed = _run(["go", "list", "-m", "-json", component.upstream], component.module_dir, "")
    return copy_manifests_from(Path(json.loads(listed)["Dir"]), component, manifests, out)


def copy_manifests_from(
    root: Path, component: Component, manifests: Manifests, out: Path
) -> list[Path]:
    """Copy `manifests` out of the module source at `root` into the entry folder `out`."""
    source = root / manifests.source
    files = sorted(source.glob("*.yaml")) if source.is_dir() else [source]
    if not files or not all(path.is_file() for path in files):
        raise BuildError(f"{component.upstream}: no YAML at {manifests.source}")
    target = out / manifests.target
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, target / path.name)
    return [target / path.name for path in files]


def _package_count(build: list[str], cwd: Path) -> int:
    """How many packages the `go build` command line `build` imports (`go list -deps`)."""
    flags = [arg for arg in build[2:] if arg.startswith(("-modfile=", "-trimpath"))]
    if "-tags" in build:
        flags += build[build.index("-tags") : build.index("-tags") + 2]
    packages = build[build.index("-o") + 2 :]
    listed = _run(["go", "list", *flags, "-deps", *packages], cwd, "go list -deps")
    return len(listed.split())


def _trimmed(component: Component, trim: SourceTrim, work: Path) -> Path:
    """Download the upstream module alone (the build fetches what the trimmed source
    imports), trim a copy of it in `work`; returns the go.mod to build with."""
    command = ["go", "mod", "download", "-json", component.upstream]
    module = Path(json.loads(_run(command, component.module_dir, "go mod download"))["Dir"])
    try:
        return prepare(module, component.upstream, component.module_dir, trim, work)
    except TrimError as error:
        raise BuildError(str(error)) from error


def build(component: Component, cache: Path, say: Say = print) -> Path:
    """The cache entry of `component`, building it first when it is missing or stale."""
    entry = component.entry(cache)
    if complete(component, cache):
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry.parent / f".{entry.name}.lock"):
        if complete(component, cache):
            return entry
        env = go_env()
        label = f"{component.name} {component.version}"
        check_disk(disk_needs(component, cache, env), label)
        started = time.monotonic()
        partial = entry.parent / f".{entry.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        modfile = None
        work = entry.parent / f".{entry.name}.source"
        if component.trim is None:
            with _stage(say, label, "download modules"):
                _run(["go", "mod", "download"], component.module_dir, "go mod download")
        else:
            with _stage(say, label, "download and trim its source"):
                modfile = _trimmed(component, component.trim, work)
        if component.binaries:
            names = " ".join(binary.name for binary in component.binaries)
            command = build_command(component, partial, modfile)
            total = _package_count(command, component.module_dir)
            say(
                f"{label}: building {names} ({total} packages with the standard library; "
                "a cold build compiles them all and takes minutes; progress follows)"
            )
            with (
                _stage(say, label, f"build {names}"),
                Progress(say, f"{label}: build", PROGRESS_EVERY, total) as progress,
            ):
                command.insert(2, "-v")
                _run(command, component.module_dir, f"building {names}", progress)
            with _stage(say, label, "check versions"):
                for binary in component.binaries:
                    for check in binary.checks:
                        run_check(partial / binary.name, check)
        for manifests in component.manifests:
            with _stage(say, label, f"copy {manifests.source}"):
                copy_manifests(component, manifests, partial)
        shutil.rmtree(work, ignore_errors=True)
        seconds = round(time.monotonic() - started, 1)
        marker = {"fingerprint": fingerprint(component), "seconds": seconds, "go": env["GOVERSION"]}
        (partial / MARKER).write_text(json.dumps(marker) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        partial.rename(entry)
        say(f"{label}: built in {seconds:.0f}s")
    return entry
