"""The clusters e2e tests run on: the local fleet (default) or kind (where Docker exists).

Both give tests the same handle per cluster: `name`, `kubeconfig_path` and
`kubectl(*args, stdin=None, check=True)` returning a CompletedProcess.

- `local`: `modelplane-localfleet up` (the real command line, as a user runs
  it) from `e2e/fleet.yaml`, then this test process enters the fleet's network
  namespace, so every client a test starts runs inside it. `down` at the end.
- `kind`: one kind cluster per cluster of `e2e/fleet.yaml`, made by
  pytest-kind. It needs Docker, which our CI machines lack, so it has never run
  here; tests that need the local fleet's extras (LWS, Traefik, the harness)
  are for the local backend only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelplane_localfleet import fleetfile
from modelplane_localfleet.cluster import run_kubectl
from modelplane_localfleet.fleet import Fleet

ROOT = Path(__file__).resolve().parents[1]
FLEET_FILE = ROOT / "e2e" / "fleet.yaml"


class ClusterHandle(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kubeconfig_path(self) -> Path: ...

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]: ...


def harness(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `modelplane-localfleet ARGS` as a user would, from this test process."""
    return subprocess.run(
        [sys.executable, "-m", "modelplane_localfleet", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@dataclass
class KindHandle:
    """A kind cluster made by pytest-kind (unverified on our machines: no Docker)."""

    name: str
    cluster: object  # pytest_kind.KindCluster

    @property
    def kubeconfig_path(self) -> Path:
        path: Path = self.cluster.kubeconfig_path  # type: ignore[attr-defined]
        return path

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        kubectl_path = self.cluster.kubectl_path  # type: ignore[attr-defined]
        command = [str(kubectl_path), f"--kubeconfig={self.kubeconfig_path}", *args]
        return run_kubectl(command, self.name, stdin, check, timeout)


def kind_clusters(names: Sequence[str]) -> list[KindHandle]:
    from pytest_kind import KindCluster  # type: ignore[import-untyped]

    handles = []
    for name in names:
        cluster = KindCluster(f"modelplane-e2e-{name}")
        cluster.create()
        cluster.ensure_kubectl()
        handles.append(KindHandle(name, cluster))
    return handles


def fleet_cluster_names() -> list[str]:
    return ["control", *(e.name for e in fleetfile.read([FLEET_FILE]))]


def leftovers(fleet: Fleet) -> list[str]:
    """What of `fleet` still exists: its namespace, mounts naming it, processes naming its state."""
    name = fleet.namespace.name
    found = []
    if fleet.namespace.exists():
        found.append(f"network namespace {name}")
    mounts = Path("/proc/mounts").read_text()
    found += [f"mount {line.split()[1]}" for line in mounts.splitlines() if name in line]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(fleet.state) in cmdline and int(pid) != os.getpid():
                found.append(f"process {pid}: {cmdline[:80]}")
    return found
