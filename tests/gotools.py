"""Builds the small Go programs the tests compare against (Kubernetes' own libraries).

Each binary is cached outside the repository under
``${XDG_CACHE_HOME:-~/.cache}/modelplane/<name>-<hash>``, keyed by a hash of its
go.mod, go.sum and main.go, so a source change rebuilds it and nothing else does.
Test-only helper: it may use subprocess and the environment. One benchmark builds its
bare Go proxy with it too (`tools/bench/proxy_floor.py`, `tools/bench/goproxy`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("go.mod", "go.sum", "main.go")


class GoUnavailableError(RuntimeError):
    """The Go toolchain is not installed."""


class GoTool:
    """One Go program under `tools/`, built on first use."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory

    def binary_path(self) -> Path:
        digest = hashlib.sha256()
        for source in SOURCES:
            digest.update(source.encode())
            digest.update((self.directory / source).read_bytes())
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "modelplane" / f"{self.name}-{digest.hexdigest()[:16]}"

    def build(self) -> Path:
        """The path of an up-to-date binary, built if needed."""
        target = self.binary_path()
        if target.exists():
            return target
        go = shutil.which("go")
        if go is None:
            raise GoUnavailableError("the Go toolchain ('go') is not on PATH")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.tmp{os.getpid()}")
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), "."],
            cwd=self.directory,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"go build of {self.directory} failed:\n{result.stderr}")
        partial.replace(target)
        return target
