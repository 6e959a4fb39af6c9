"""A run's progress: counters shared by the download threads, reported to a JSON status file
and stdout every `interval` seconds and once more at the end.

The status file is replaced atomically, so a reader (cache-hydrator, `kubectl exec cat`)
never sees half of one. Its fields: phase (Hydrating, Ready, Failed, the ModelCache's
per-cluster phases), step (resolving, downloading, verified, done), repo, revision,
commit, bytesDone, bytesTotal, bytesFetched (over the network in this run), filesDone,
filesTotal, message, updated (RFC 3339).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from cache_hydrator.plan import human


@dataclass
class Status:
    repo: str
    revision: str
    phase: str = "Hydrating"
    step: str = "resolving"
    commit: str = ""
    bytesDone: int = 0  # noqa: N815 (the status file's JSON names)
    bytesTotal: int = 0  # noqa: N815
    bytesFetched: int = 0  # noqa: N815
    filesDone: int = 0  # noqa: N815
    filesTotal: int = 0  # noqa: N815
    message: str = ""
    updated: str = ""


class Progress:
    """Thread-safe updates to one `Status`; `report` writes it out (and hands the file's
    text to `publish` when given: `report.ConfigMapReport`)."""

    def __init__(
        self,
        status: Status,
        path: Path,
        out: TextIO,
        publish: Callable[[str], None] | None = None,
    ) -> None:
        self._status = status
        self._path = path
        self._out = out
        self._publish = publish
        self._lock = threading.Lock()

    def set(self, **fields: object) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self._status, name, value)

    def add_bytes(self, done: int, fetched: int) -> None:
        with self._lock:
            self._status.bytesDone += done
            self._status.bytesFetched += fetched

    def file_done(self) -> None:
        with self._lock:
            self._status.filesDone += 1

    def snapshot(self) -> Status:
        with self._lock:
            return Status(**asdict(self._status))

    def report(self) -> Status:
        status = self.snapshot()
        status.updated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self._path.with_name(f".{self._path.name}.{os.getpid()}")
        text = json.dumps(asdict(status), indent=2) + "\n"
        scratch.write_text(text)
        scratch.replace(self._path)
        if self._publish is not None:
            self._publish(text)
        share = f" ({100 * status.bytesDone // status.bytesTotal}%)" if status.bytesTotal else ""
        line = (
            f"{status.phase} {status.step}: {human(status.bytesDone)} of "
            f"{human(status.bytesTotal)}{share}, files {status.filesDone}/{status.filesTotal}"
        )
        print(f"{line}: {status.message}" if status.message else line, file=self._out, flush=True)
        return status


class Reporter:
    """Calls `progress.report()` every `interval` seconds until stopped, then once more."""

    def __init__(self, progress: Progress, interval: float) -> None:
        self._progress = progress
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def __enter__(self) -> Reporter:
        self._progress.report()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._progress.report()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._progress.report()
