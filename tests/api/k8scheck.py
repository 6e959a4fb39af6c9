"""Builds and drives the Go checker in ``tools/apigen/k8scheck`` (Kubernetes' own validation).

The binary is cached outside the repository, keyed by a hash of its sources,
under ``${XDG_CACHE_HOME:-~/.cache}/modelplane/``. Test-only helper: it may use
subprocess and the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "apigen" / "k8scheck"
SOURCES = ("go.mod", "go.sum", "main.go")


class GoUnavailableError(RuntimeError):
    """The Go toolchain is not installed."""


def binary_path() -> Path:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode())
        digest.update((TOOL / name).read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "modelplane" / f"k8scheck-{digest.hexdigest()[:16]}"


def build() -> Path:
    """The path of an up-to-date binary, built if needed."""
    target = binary_path()
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise GoUnavailableError("the Go toolchain ('go') is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.tmp{os.getpid()}")
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=TOOL,
        check=True,
        capture_output=True,
        text=True,
    )
    partial.replace(target)
    return target


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
