"""Container processes: started in their own session, tied to the agent's life.

`spawn` runs a launch's command with the container's environment, its output
appended to a per-container log, in a new session (so the whole process group
can be signalled) and with a parent-death signal, so processes never outlive
the agent: a cluster stopped abruptly loses its pods, as a lost node would.
`stop` sends SIGTERM, waits for the grace period, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


async def spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path
) -> asyncio.subprocess.Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def _signal(process: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def stop(process: asyncio.subprocess.Process, grace_s: float) -> int:
    """Stop the process and its group; its exit code (negative: killed by that signal)."""
    if process.returncode is None:
        _signal(process, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), max(grace_s, 0.0))
        except TimeoutError:
            _signal(process, signal.SIGKILL)
            await process.wait()
    _signal(process, signal.SIGKILL)  # anything the group left behind
    assert process.returncode is not None
    return process.returncode


def exit_code(returncode: int) -> int:
    """A shell-style exit code: 128+N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode
