"""A real OCI registry for tests: crane's `registry serve` (in memory) on a port the kernel picks.

Test-only helper: it starts a process.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def crane_registry(crane: Path) -> Iterator[str]:
    """`host:port` of a registry served by `crane` until the block ends."""
    server = subprocess.Popen(
        [str(crane), "registry", "serve", "--address", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        assert "serving on port" in line, line
        yield f"127.0.0.1:{line.rsplit(' ', 1)[1].strip()}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def crane_output(crane: Path, *args: str, timeout: float = 120) -> str:
    """What `crane ARGS` prints, stripped; fails the test with crane's error when it fails."""
    done = subprocess.run(
        [str(crane), *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    assert done.returncode == 0, f"crane {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()
