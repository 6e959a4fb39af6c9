"""Build and drive the Go reference evaluator in ``tools/celdiff``.

The binary is cached outside the repository, keyed by a hash of go.mod,
go.sum and main.go, under ``${XDG_CACHE_HOME:-~/.cache}/modelplane/``.
Test-only helper: it may use subprocess and the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["GoUnavailableError", "binary_path", "build", "run_cases"]

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "celdiff"
SOURCES = ("go.mod", "go.sum", "main.go")


class GoUnavailableError(RuntimeError):
    """The Go toolchain is not installed."""


def binary_path() -> Path:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode())
        digest.update((TOOL / name).read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "modelplane" / f"celdiff-{digest.hexdigest()[:16]}"


def build() -> Path:
    """Return the path of an up-to-date binary, building it if needed."""
    target = binary_path()
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise GoUnavailableError("the Go toolchain ('go') is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".tmp{os.getpid()}")
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=TOOL,
        check=True,
        capture_output=True,
        text=True,
    )
    partial.replace(target)
    return target


def run_cases(binary: Path, cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Evaluate cases in Go; returns results by case id."""
    payload = "".join(json.dumps(case) + "\n" for case in cases)
    completed = subprocess.run(
        [str(binary)], input=payload, capture_output=True, text=True, check=True, timeout=300
    )
    results: dict[str, dict[str, Any]] = {}
    for line in completed.stdout.splitlines():
        result = json.loads(line)
        results[result["id"]] = result
    return results
