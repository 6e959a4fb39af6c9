"""Detached processes the harness starts and finds again from a later command.

`up` returns while the fleet keeps running, so every component is started in its
own session (no controlling terminal, stdin from /dev/null, output appended to
its log) and described by a small JSON record: pid, the kernel's start time of
that pid, and the command line. A record counts as running only while a process
with that pid *and* that start time exists, so a pid the kernel reused for
something else is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Record:
    """One started process: pid, its start time in clock ticks since boot, and argv."""

    pid: int
    start_ticks: int
    argv: list[str]


def start_ticks(pid: int) -> int | None:
    """The process's start time from /proc (field 22 of stat), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def spawn(
    record_path: Path, log_path: Path, argv: Sequence[str], env: Mapping[str, str] | None = None
) -> Record:
    """Start `argv` detached, appending its output to `log_path`, and write its record."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    ticks = start_ticks(process.pid)
    record = Record(process.pid, ticks if ticks is not None else -1, list(argv))
    temporary = record_path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(record)))
    temporary.replace(record_path)
    return record


def read(record_path: Path) -> Record | None:
    try:
        data = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    return Record(int(data["pid"]), int(data["start_ticks"]), list(data["argv"]))


def running(record_path: Path) -> Record | None:
    """The record when its process still runs, else None."""
    record = read(record_path)
    if record is None or start_ticks(record.pid) != record.start_ticks:
        return None
    return record


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our child (started by this harness)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(record_path: Path, *, grace_s: float, abrupt: bool = False) -> bool:
    """Stop the recorded process (SIGKILL at once when `abrupt`); True if one was running."""
    record = running(record_path)
    if record is None:
        record_path.unlink(missing_ok=True)
        return False
    signals = (
        [(signal.SIGKILL, 5.0)] if abrupt else [(signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)]
    )
    for sig, wait in signals:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(record.pid)
            if start_ticks(record.pid) != record.start_ticks:
                record_path.unlink(missing_ok=True)
                return True
            time.sleep(0.05)
    raise RuntimeError(f"process {record.pid} ({record.argv[0]}) survived SIGKILL")
