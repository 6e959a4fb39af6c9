"""Builds and drives the Go checker in ``tools/apigen/k8scheck`` (Kubernetes' own validation).

The binary is cached outside the repository, keyed by a hash of its sources,
under ``${XDG_CACHE_HOME:-~/.cache}/modelplane/``. Test-only helper: it may use
subprocess and the environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.gotools import ROOT, GoTool, GoUnavailableError

__all__ = ["ROOT", "GoUnavailableError", "build", "verdicts"]

TOOL = GoTool("k8scheck", ROOT / "tools" / "apigen" / "k8scheck")


def build() -> Path:
    """The path of an up-to-date binary, built if needed."""
    return TOOL.build()


def verdicts(binary: Path, crds: list[Path], objects: list[dict[str, Any]]) -> list[list[str]]:
    """Kubernetes' errors for each object; raises if a CRD itself is rejected."""
    result = subprocess.run(
        [str(binary), *map(str, crds)],
        input="".join(json.dumps(o) + "\n" for o in objects),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"Kubernetes rejects the CRDs:\n{result.stderr}")
    out: list[list[str]] = [json.loads(line) for line in result.stdout.splitlines()]
    return out
