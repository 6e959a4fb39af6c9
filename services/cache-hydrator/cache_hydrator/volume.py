"""The cache volume: the repository's files at their paths, and the run's own state beside them.

    DIR/<repo files...>              only ever a verified file (moved in after its check)
    DIR/.modelplane/partial/<path>   a download in progress; a later run resumes from its length
    DIR/.modelplane/verified.json    {path: [checksum, size]} of every verified file
    DIR/.modelplane/ready.json       the marker: repo, revision, commit, files; written last
    DIR/.modelplane/status.json      the progress report (progress.py)
    DIR/.modelplane/lock             held (flock) by the run in progress

The marker exists only while the volume holds exactly the marked commit, verified.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from cache_hydrator.plan import REPO, HydrationError, OnDisk, Plan

STATE = ".modelplane"


class Volume:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / STATE
        self.marker = self.state / "ready.json"
        self._verified_file = self.state / "verified.json"
        self._partial = self.state / "partial"
        self._lock = threading.Lock()
        self._verified: dict[str, tuple[str, int]] = {}

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Holds `DIR/.modelplane/lock` for the run: a second run on the volume fails at once."""
        self.state.mkdir(parents=True, exist_ok=True)
        lock = self.state / "lock"
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HydrationError("", f"another hydration run holds {lock}") from None
            yield

    def final(self, path: str) -> Path:
        parts = PurePosixPath(path).parts
        if not parts or parts[0] == STATE or any(p in {"", ".", ".."} for p in parts):
            raise HydrationError(REPO, f"the repository has a file at {path!r}, outside the cache")
        return self.root.joinpath(*parts)

    def partial(self, path: str) -> Path:
        return self._partial / self.final(path).relative_to(self.root)

    def read_marker(self) -> dict[str, Any] | None:
        try:
            marker: dict[str, Any] = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return None
        files: dict[str, int] = marker.get("files", {})
        for path, size in files.items():
            found = self.root / path
            if not found.is_file() or found.stat().st_size != size:
                return None
        return marker

    def write_marker(self, marker: dict[str, Any]) -> None:
        """Marks the volume Ready (the last step) and drops the emptied partial folder."""
        shutil.rmtree(self._partial, ignore_errors=True)
        _write_json(self.marker, marker)

    def clear_marker(self) -> None:
        self.marker.unlink(missing_ok=True)

    def observe(self) -> OnDisk:
        """Verified files still present at their size, partial downloads, free bytes."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            recorded = json.loads(self._verified_file.read_text())
        except (OSError, ValueError):
            recorded = {}
        self._verified = {
            path: (str(checksum), int(size))
            for path, (checksum, size) in recorded.items()
            if (self.root / path).is_file() and (self.root / path).stat().st_size == size
        }
        partial = {
            p.relative_to(self._partial).as_posix(): p.stat().st_size
            for p in (self._partial.rglob("*") if self._partial.is_dir() else [])
            if p.is_file()
        }
        fs = os.statvfs(self.root)
        return OnDisk(dict(self._verified), partial, fs.f_bavail * fs.f_frsize)

    def clear(self, plan: Plan) -> None:
        """Deletes what the plan removes, before anything is fetched."""
        for path in plan.remove:
            self.final(path).unlink(missing_ok=True)
            with self._lock:
                self._verified.pop(path, None)
        for path in plan.drop_partial:
            self.partial(path).unlink(missing_ok=True)
        self._save_verified()

    def place(self, path: str, checksum: str, size: int) -> None:
        """Moves a verified download to its path and records it."""
        target = self.final(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.partial(path).replace(target)
        with self._lock:
            self._verified[path] = (checksum, size)
        self._save_verified()

    def _save_verified(self) -> None:
        with self._lock:
            _write_json(
                self._verified_file, {p: list(v) for p, v in sorted(self._verified.items())}
            )


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    scratch.write_text(json.dumps(value, indent=2) + "\n")
    scratch.replace(path)
