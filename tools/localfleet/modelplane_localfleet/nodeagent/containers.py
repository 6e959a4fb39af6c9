"""Container processes: started in their own session, tied to the agent's life.

`spawn` runs a launch's command with the container's environment, its output
appended to a per-container log, in a new session (so the whole process group
can be signalled) and with a parent-death signal, so processes never outlive
the agent: a cluster stopped abruptly loses its pods, as a lost node would.
`stop` sends SIGTERM, waits for the grace period, then SIGKILL.

Volumes: each `VolumeMount` is bind-mounted in a mount namespace of the
process's own (read-only when it says so), so the process sees its pod's
directory (or file, for a `subPath`) at the mount path while the machine's
view of that path is untouched (a missing mount point is created empty first).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from modelplane_localfleet.nodeagent.mounts import bind_privately
from modelplane_localfleet.nodeagent.volumes import VolumeMount

_PR_SET_PDEATHSIG = 1


def _prepare(mounts: Sequence[VolumeMount]) -> Callable[[], None]:
    """What the child runs between fork and exec (only async-signal-tolerant calls)."""
    sources = [(str(m.source).encode(), str(m.target).encode()) for m in mounts]
    read_only = {str(m.target).encode() for m in mounts if m.read_only}

    def prepare() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if sources:
            bind_privately(sources, read_only)

    return prepare


async def spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    mounts: Sequence[VolumeMount] = (),
) -> asyncio.subprocess.Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    for mount in mounts:
        if mount.source.is_file():
            mount.target.parent.mkdir(parents=True, exist_ok=True)
            mount.target.touch(exist_ok=True)
            continue
        mount.source.mkdir(parents=True, exist_ok=True)
        mount.target.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            preexec_fn=_prepare(mounts),
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
