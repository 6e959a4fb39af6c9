"""Builds the local fleet's binaries from the Go module proxy, once per version, into a cache.

Each binary family has its own wrapper Go module under `tools/localfleet/go/`
(so version selection in one never drags another): Kubernetes (kube-apiserver,
kube-scheduler, kube-controller-manager, kubectl, with the version stamped so
`/version` reports the release) and etcd. Binaries go to
`$MODELPLANE_CACHE/localfleet/<family>-<version>/` (default
`${XDG_CACHE_HOME:-~/.cache}/modelplane`); an entry counts only once its
`.complete` marker is written, so an interrupted build is redone. Go's own module
and build caches stay where Go keeps them. Free disk is checked before a cold
build, with a message that says how much is needed and where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
GO_DIR = Path(__file__).resolve().parents[1] / "go"
GIB = 1 << 30


def _k8s_ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    stamps = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamps += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(["-s", "-w", *stamps])


@dataclass(frozen=True, slots=True)
class Family:
    """Binaries built from one wrapper module: `binaries` maps a file name to its Go package."""

    name: str
    version: str
    module: str
    binaries: tuple[tuple[str, str], ...]
    ldflags: str = "-s -w"
    tags: str = ""
    cold_build_bytes: int = 4 * GIB

    @property
    def module_dir(self) -> Path:
        return GO_DIR / self.module

    def entry(self, cache: Path) -> Path:
        return cache / "localfleet" / f"{self.name}-{self.version}"

    def complete(self, cache: Path) -> bool:
        return (self.entry(cache) / ".complete").exists()


KUBERNETES = Family(
    name="kubernetes",
    version=KUBERNETES_VERSION,
    module="k8s",
    binaries=tuple(
        (name, f"k8s.io/kubernetes/cmd/{name}")
        for name in ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubectl")
    ),
    ldflags=_k8s_ldflags(KUBERNETES_VERSION),
    tags="selinux,notest",
    cold_build_bytes=6 * GIB,
)
ETCD = Family(
    name="etcd",
    version=ETCD_VERSION,
    module="etcd",
    binaries=(("etcd", "go.etcd.io/etcd/server/v3"),),
)
FAMILIES = (KUBERNETES, ETCD)


class DiskSpaceError(RuntimeError):
    """Not enough free disk for a cold build."""


def default_cache() -> Path:
    explicit = os.environ.get("MODELPLANE_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelplane"


def check_disk(path: Path, needed: int) -> None:
    """Raise `DiskSpaceError`, naming the numbers, when `path`'s file system is short."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise DiskSpaceError(
            f"a cold build needs about {needed / GIB:.1f} GiB free on the file system of {probe} "
            f"(the cache and Go's module and build caches); only {free / GIB:.1f} GiB is free. "
            "Free some space or point MODELPLANE_CACHE, GOMODCACHE and GOCACHE elsewhere."
        )


def build(family: Family, cache: Path, say: Callable[[str], None] = print) -> Path:
    """The cache entry of `family`, building whatever is missing. Prints each stage's time."""
    entry = family.entry(cache)
    if family.complete(cache):
        return entry
    check_disk(cache, family.cold_build_bytes)
    entry.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0"}
    for name, package in family.binaries:
        started = time.monotonic()
        command = ["go", "build", "-trimpath", "-ldflags", family.ldflags, "-o", str(entry / name)]
        if family.tags:
            command[2:2] = ["-tags", family.tags]
        result = subprocess.run(
            [*command, package],
            cwd=family.module_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building {name} ({package}) failed:\n{result.stderr[-4000:]}")
        say(f"built {name} {family.version} in {time.monotonic() - started:.0f}s")
    (entry / ".complete").write_text(family.version + "\n")
    return entry
