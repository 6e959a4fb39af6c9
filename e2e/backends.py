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

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelplane_localfleet import fleetfile

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
        result = subprocess.run(
            [str(kubectl_path), f"--kubeconfig={self.kubeconfig_path}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{self.name}: kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result


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
