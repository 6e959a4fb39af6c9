"""The hub, through the real `huggingface_hub` client: resolving a revision to a commit and
its file listing, streaming one file with resume and checking it, and naming each error.

A file is fetched at the resolved commit (never the branch, so a branch that moves during
the run does not mix two commits), appended to its partial download from where the last
run stopped (`Range`), and hashed as it arrives: the sha256 the hub publishes for LFS
files, the git object id (a SHA-1 of the content, which also checks the size) for the rest.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx2
from huggingface_hub import HfApi, get_session, hf_hub_url, hf_raise_for_status
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils._headers import build_hf_headers

from cache_hydrator.plan import AUTH, REPO, REVISION, HydrationError, Listing, RemoteFile

_ATTEMPTS = 5  # transfers in a row that break before a byte arrives
_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
_READ = 1024 * 1024


class StoppedError(Exception):
    """Another file of the run failed: this one stops where it is (its partial file stays)."""


class CorruptedError(Exception):
    """A download whose checksum or length differs from what the hub publishes; `nbytes`:
    the length it reached."""

    def __init__(self, message: str, nbytes: int) -> None:
        super().__init__(message)
        self.nbytes = nbytes


@dataclass(frozen=True)
class Hub:
    endpoint: str
    repo: str
    revision: str
    token: str | None

    def explain(self, error: Exception) -> HydrationError:
        """The Failed message for a hub or transport error: its cause and the field to fix."""
        where = f"{self.repo} on {self.endpoint}"
        status = error.response.status_code if isinstance(error, HfHubHTTPError) else None
        if isinstance(error, GatedRepoError):
            if self.token is None:
                return HydrationError(
                    AUTH, f"{where} is gated and no token was given (HTTP {status})"
                )
            return HydrationError(AUTH, f"the hub refused the token for {where} (HTTP {status})")
        if isinstance(error, RevisionNotFoundError):
            return HydrationError(REVISION, f"revision {self.revision!r} not found in {where}")
        if isinstance(error, RepositoryNotFoundError):
            hint = " (or private, and the token does not grant it)" if status == 401 else ""
            return HydrationError(REPO, f"repository {where} not found{hint} (HTTP {status})")
        if isinstance(error, RemoteEntryNotFoundError):
            return HydrationError(REPO, f"a listed file vanished from {where}: {error}")
        if status in {401, 403}:
            return HydrationError(AUTH, f"the hub refused the token for {where} (HTTP {status})")
        if isinstance(error, HfHubHTTPError):
            return HydrationError("", f"the hub at {self.endpoint} answered HTTP {status}: {error}")
        unreachable = f"cannot reach the hub at {self.endpoint} (HF_ENDPOINT)"
        return HydrationError("", f"{unreachable}: {error!r}")

    def resolve(self) -> Listing:
        """The revision's commit and files, with sizes and checksums (one call)."""
        api = HfApi(endpoint=self.endpoint, token=self.token or False)
        try:
            info = api.model_info(self.repo, revision=self.revision, files_metadata=True)
        except (HfHubHTTPError, httpx2.TransportError) as error:
            raise self.explain(error) from error
        if info.sha is None or info.siblings is None:
            raise HydrationError(REPO, f"{self.repo}: the hub sent no commit or file listing")
        files = []
        for sibling in info.siblings:
            if sibling.size is None or sibling.blob_id is None:
                raise HydrationError(
                    REPO, f"{self.repo}: no size or checksum for {sibling.rfilename}"
                )
            sha256 = sibling.lfs.sha256 if sibling.lfs is not None else None
            files.append(RemoteFile(sibling.rfilename, sibling.size, sibling.blob_id, sha256))
        return Listing(self.repo, info.sha, tuple(files))

    def fetch(
        self,
        commit: str,
        file: RemoteFile,
        partial: Path,
        on_bytes: Callable[[int], None],
        stop: threading.Event,
    ) -> None:
        """Completes `partial` to the whole file and checks it (`CorruptedError` if it differs)."""
        url = hf_hub_url(self.repo, file.path, revision=commit, endpoint=self.endpoint)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.touch()
        with partial.open("r+b") as out:
            digest = _Digest(file)
            while chunk := out.read(_READ):
                digest.update(chunk)
            failures = 0  # in a row without a byte of progress
            while True:
                before = out.tell()
                try:
                    self._stream(url, out, file.size, digest, on_bytes, stop)
                    break
                except httpx2.TransportError as error:  # resumes from what was written
                    failures = 0 if out.tell() > before else failures + 1
                    if failures == _ATTEMPTS:
                        raise self.explain(error) from error
                    time.sleep(failures)
                except HfHubHTTPError as error:
                    raise self.explain(error) from error
            offset = out.tell()
        if offset != file.size or digest.hexdigest() != file.checksum:
            kind = "sha256" if file.sha256 else "git object id"
            raise CorruptedError(
                f"{file.path}: {offset} bytes with {kind} {digest.hexdigest()}, the hub publishes "
                f"{file.size} bytes with {file.checksum}",
                offset,
            )

    def _stream(
        self,
        url: str,
        out: BinaryIO,
        size: int,
        digest: _Digest,
        on_bytes: Callable[[int], None],
        stop: threading.Event,
    ) -> None:
        """Appends the file's bytes from the partial file's end, hashing them as they come."""
        offset = out.tell()
        headers = build_hf_headers(token=self.token or False)
        headers["Accept-Encoding"] = "identity"
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with get_session().stream(
            "GET", url, headers=headers, timeout=_TIMEOUT, follow_redirects=True
        ) as response:
            if response.status_code == 416:
                return  # nothing left past `offset`: the check decides
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            if offset and response.status_code != 206:
                out.seek(0)
                out.truncate()
                digest.restart()
                on_bytes(-offset)
                offset = 0
            for chunk in response.iter_bytes():
                if stop.is_set():
                    raise StoppedError
                out.write(chunk)
                digest.update(chunk)
                offset += len(chunk)
                on_bytes(len(chunk))
                if offset > size:
                    return  # longer than the listing says: the check fails it


class _Digest:
    """sha256 of the content, or the git object id (SHA-1 of `blob <size>\\0` + content)."""

    def __init__(self, file: RemoteFile) -> None:
        self._file = file
        self.restart()

    def restart(self) -> None:
        if self._file.sha256 is not None:
            self._hash = hashlib.sha256()
        else:
            self._hash = hashlib.sha1(b"blob %d\0" % self._file.size, usedforsecurity=False)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
