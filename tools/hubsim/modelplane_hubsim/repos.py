"""The hub's directory: repositories, their revisions, files and content-derived commits.

Layout (tools/hubsim/README.md): `ROOT/<org>/<name>/<revision>/<files...>`. Each folder
under a repository is a revision; its commit is the SHA-1 of its file list (paths and git
object ids), so a commit changes exactly when the content does. An optional
`ROOT/<org>/<name>/.hub.json` holds `{"gated": true, "tokens": [...], "branches":
{"main": "<folder>"}, "throttleMiBs": 1.0}`: a gated repository answers only requests that
carry one of its tokens; a branch names a folder, so moving it is editing that file while
the folder of the old commit stays servable by its hash. A revision is found as a branch,
then a folder name, then a commit of any folder. `throttleMiBs` caps that repository's file
bodies (all answers together), to make one repository's downloads slow enough to interrupt.

File hashes are computed once per (size, mtime) and kept in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

HUB_CONFIG = ".hub.json"
# Files the Hub keeps in LFS by default (its .gitattributes) and anything of 10 MiB or more.
LFS_SUFFIXES = frozenset(
    {
        ".7z",
        ".arrow",
        ".bin",
        ".bz2",
        ".ckpt",
        ".ftz",
        ".gguf",
        ".gz",
        ".h5",
        ".joblib",
        ".mlmodel",
        ".model",
        ".msgpack",
        ".npy",
        ".npz",
        ".onnx",
        ".ot",
        ".parquet",
        ".pb",
        ".pickle",
        ".pkl",
        ".pt",
        ".pth",
        ".rar",
        ".safetensors",
        ".tar",
        ".tflite",
        ".tgz",
        ".wasm",
        ".xz",
        ".zip",
        ".zst",
    }
)
LFS_MIN_SIZE = 10 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][-_.A-Za-z0-9]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1024 * 1024


class HubError(Exception):
    """An answer other than success: HTTP status, the Hub's `X-Error-Code` and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RepoFile:
    """One file of a revision as the Hub describes it."""

    path: str
    size: int
    blob_id: str  # the git object id: of the content, or of the LFS pointer
    sha256: str | None  # set for LFS files
    pointer_size: int | None
    disk: Path


@dataclass(frozen=True)
class Snapshot:
    """One revision of a repository: its commit and files, sorted by path."""

    repo_id: str
    commit: str
    files: tuple[RepoFile, ...]
    last_modified: float

    def file(self, path: str) -> RepoFile | None:
        return next((f for f in self.files if f.path == path), None)

    def folders(self) -> list[str]:
        found = {str(p) for f in self.files for p in PurePosixPath(f.path).parents}
        return sorted(found - {"."})


@dataclass(frozen=True)
class RepoSettings:
    """A repository's `.hub.json`."""

    gated: bool
    tokens: frozenset[str]
    branches: dict[str, str]
    throttle_mib_s: float | None  # caps the repository's file bodies, all answers together


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def is_lfs(path: str, size: int) -> bool:
    return PurePosixPath(path).suffix.lower() in LFS_SUFFIXES or size >= LFS_MIN_SIZE


class Hub:
    """Reads repositories from `root`; every call sees the directory as it is now."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._hashes: dict[Path, tuple[tuple[int, int], str]] = {}
        self._lock = threading.Lock()

    def repo_dir(self, repo_id: str) -> Path:
        parts = repo_id.split("/")
        found = self.root.joinpath(*parts)
        if len(parts) != 2 or not all(_NAME.match(p) for p in parts) or not found.is_dir():
            raise HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
        return found

    def settings(self, repo_id: str) -> RepoSettings:
        config = self.repo_dir(repo_id) / HUB_CONFIG
        raw = json.loads(config.read_text()) if config.is_file() else {}
        throttle = raw.get("throttleMiBs")
        if throttle is not None and (not isinstance(throttle, int | float) or throttle <= 0):
            raise HubError(
                500, "", f"{config}: throttleMiBs must be a number above 0, not {throttle!r}"
            )
        return RepoSettings(
            gated=bool(raw.get("gated", False)),
            tokens=frozenset(raw.get("tokens", [])),
            branches=dict(raw.get("branches", {})),
            throttle_mib_s=float(throttle) if throttle is not None else None,
        )

    def authorize(self, repo_id: str, token: str | None) -> RepoSettings:
        """The repository's settings, or the Hub's 401/403 for a gated one."""
        settings = self.settings(repo_id)
        if settings.gated and token is None:
            raise HubError(
                401,
                "GatedRepo",
                f"Access to model {repo_id} is restricted. You must be authenticated to access it.",
            )
        if settings.gated and token not in settings.tokens:
            raise HubError(
                403,
                "GatedRepo",
                f"Access to model {repo_id} is restricted and you are not in the authorized list.",
            )
        return settings

    def snapshot(self, repo_id: str, revision: str, settings: RepoSettings) -> Snapshot:
        repo = self.repo_dir(repo_id)
        folders = sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith("."))
        named = settings.branches.get(revision, revision)
        for folder in folders:
            if folder.name == named:
                return self._read(repo_id, folder)
        if _COMMIT.match(revision):
            for folder in folders:
                snapshot = self._read(repo_id, folder)
                if snapshot.commit == revision:
                    return snapshot
        raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def warm(self) -> list[Snapshot]:
        """Reads (and so hashes) every revision of every repository, before serving."""
        found = []
        for org in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for repo in sorted(p for p in org.iterdir() if p.is_dir()):
                for folder in sorted(p for p in repo.iterdir() if p.is_dir()):
                    if not folder.name.startswith("."):
                        found.append(self._read(f"{org.name}/{repo.name}", folder))
        return found

    def _read(self, repo_id: str, folder: Path) -> Snapshot:
        files = []
        newest = 0.0
        for disk in sorted(p for p in folder.rglob("*") if p.is_file()):
            stat = disk.stat()
            newest = max(newest, stat.st_mtime)
            path = disk.relative_to(folder).as_posix()
            digest = self._digest(
                disk, (stat.st_size, stat.st_mtime_ns), is_lfs(path, stat.st_size)
            )
            if is_lfs(path, stat.st_size):
                pointer = lfs_pointer(digest, stat.st_size)
                files.append(
                    RepoFile(path, stat.st_size, git_blob_id(pointer), digest, len(pointer), disk)
                )
            else:
                files.append(RepoFile(path, stat.st_size, digest, None, None, disk))
        listing = "".join(f"{f.path}\0{f.blob_id}\n" for f in files).encode()
        commit = hashlib.sha1(listing, usedforsecurity=False).hexdigest()
        return Snapshot(repo_id, commit, tuple(files), newest)

    def _digest(self, disk: Path, key: tuple[int, int], lfs: bool) -> str:
        """The sha256 of an LFS file, the git object id of any other."""
        with self._lock:
            cached = self._hashes.get(disk)
        if cached is not None and cached[0] == key:
            return cached[1]
        if lfs:
            with disk.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        else:
            digest = git_blob_id(disk.read_bytes())
        with self._lock:
            self._hashes[disk] = (key, digest)
        return digest
