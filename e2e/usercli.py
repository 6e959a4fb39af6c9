"""The `modelplane` command as a person runs it in e2e tests: from the checkout, and inside
a local fleet's network namespace through `modelplane localfleet exec`."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELPLANE = [sys.executable, "-m", "modelplane"]


def inside(state: Path, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODELPLANE, "localfleet", "exec", "--state", str(state), "--", *command],
        capture_output=True, text=True, check=False, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def kubectl_json(state: Path, *args: str) -> Any:
    done = inside(state, "kubectl", *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def printed_command(output: str, after: str) -> list[str]:
    """The command on the line after the line starting with `after`."""
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(after))
    return shlex.split(lines[index + 1])
