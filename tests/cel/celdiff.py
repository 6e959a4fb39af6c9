"""Drives the Go reference evaluator in ``tools/celdiff`` (built by ``tests.gotools``).

The binary is cached outside the repository, keyed by a hash of go.mod,
go.sum and main.go, under ``${XDG_CACHE_HOME:-~/.cache}/modelplane/``.
Test-only helper: it may use subprocess and the environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.gotools import ROOT, GoTool, GoUnavailableError

__all__ = ["GoUnavailableError", "build", "run_cases"]

TOOL = GoTool("celdiff", ROOT / "tools" / "celdiff")


def build() -> Path:
    """The path of an up-to-date binary, built if needed."""
    return TOOL.build()


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
