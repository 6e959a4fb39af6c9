"""The hub's HTTP server: the Hugging Face Hub endpoints a download uses, over `repos.Hub`.

    GET       /api/models/{org}/{name}[/revision/{rev}][?blobs=true]   model info
    GET       /api/models/{org}/{name}/tree/{rev}[/{path}][?recursive=true]
    GET|HEAD  /{org}/{name}/resolve/{rev}/{path}                       file content
    GET       /_hubsim/stats      bytes served, per file and per repository (the double's own,
                                  for tests)

File answers carry `X-Repo-Commit`, `ETag` (the sha256 for LFS files, the git object id
otherwise), `X-Linked-Etag` and `X-Linked-Size` for LFS files, and honour one `Range`.
Errors carry the Hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound,
GatedRepo) and `X-Error-Message`. Bodies go out with `sendfile` in slices, each counted in
`Stats`; `throttle` caps the bytes per second of all file bodies together, a repository's
`throttleMiBs` (its `.hub.json`) those of that repository, and `cut_after` breaks every
file answer after that many bytes (a flaky network).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from modelplane_hubsim.repos import Hub, HubError, RepoFile, RepoSettings, Snapshot

_SLICE = 1024 * 1024
_THROTTLED_SLICE = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Stats:
    """What the hub has served since it started (or since `reset`): bytes per file and per
    repository, and the last 10,000 requests."""

    bytes_by_file: dict[str, int] = field(default_factory=dict)
    bytes_by_repo: dict[str, int] = field(default_factory=dict)
    requests: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, repo_id: str, path: str, sent: int) -> None:
        key = f"{repo_id}/{path}"
        with self.lock:
            self.bytes_by_file[key] = self.bytes_by_file.get(key, 0) + sent
            self.bytes_by_repo[repo_id] = self.bytes_by_repo.get(repo_id, 0) + sent

    def log(self, line: str) -> None:
        with self.lock:
            self.requests.append(line)

    def reset(self) -> None:
        with self.lock:
            self.bytes_by_file.clear()
            self.bytes_by_repo.clear()
            self.requests.clear()

    @property
    def bytes_sent(self) -> int:
        with self.lock:
            return sum(self.bytes_by_file.values())

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "bytesSent": sum(self.bytes_by_file.values()),
                "bytesByFile": dict(self.bytes_by_file),
                "bytesByRepo": dict(self.bytes_by_repo),
                "requests": list(self.requests),
            }


class Throttle:
    """Paces all file bodies together to at most `rate` bytes per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, nbytes: int) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + nbytes / self.rate
        time.sleep(start - now)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[-1].lower() in {"true", "1"}


def model_info(snapshot: Snapshot, gated: bool, blobs: bool) -> dict[str, Any]:
    org = snapshot.repo_id.split("/")[0]
    siblings = []
    for f in snapshot.files:
        sibling: dict[str, Any] = {"rfilename": f.path}
        if blobs:
            sibling |= {"size": f.size, "blobId": f.blob_id}
            if f.sha256 is not None:
                sibling["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": f.pointer_size}
        siblings.append(sibling)
    return {
        "_id": snapshot.commit[:24],
        "id": snapshot.repo_id,
        "modelId": snapshot.repo_id,
        "author": org,
        "sha": snapshot.commit,
        "lastModified": _iso(snapshot.last_modified),
        "createdAt": _iso(snapshot.last_modified),
        "private": False,
        "gated": "manual" if gated else False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": sum(f.size for f in snapshot.files),
    }


def tree_entry(f: RepoFile) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
    if f.sha256 is not None:
        entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
    return entry


def tree(snapshot: Snapshot, under: str, recursive: bool) -> list[dict[str, Any]]:
    prefix = f"{under}/" if under else ""
    folders = snapshot.folders()
    if under and under not in folders:
        raise HubError(404, "EntryNotFound", f"{under} does not exist on {snapshot.commit}")

    def inside(path: str) -> bool:
        rest = path.removeprefix(prefix)
        return path.startswith(prefix) and (recursive or "/" not in rest)

    entries = [
        {"type": "directory", "oid": snapshot.commit, "size": 0, "path": d}
        for d in folders
        if inside(d)
    ]
    entries += [tree_entry(f) for f in snapshot.files if inside(f.path)]
    return sorted(entries, key=lambda e: str(e["path"]))


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, every answer with a Content-Length."""

    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _token(self) -> str | None:
        header = self.headers.get("Authorization", "")
        return header.removeprefix("Bearer ").strip() or None

    def _answer(self, head: bool) -> None:
        url = urlsplit(self.path)
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        query = parse_qs(url.query)
        self.server.stats.log(f"{self.command} {url.path}")
        try:
            if segments == ["_hubsim", "stats"]:
                self._json(self.server.stats.as_json(), head)
            elif segments[:2] == ["api", "models"] and len(segments) >= 4:
                self._api(segments[2:], query, head)
            elif len(segments) >= 5 and segments[2] == "resolve":
                repo_id = "/".join(segments[:2])
                settings = self.server.hub.authorize(repo_id, self._token())
                snapshot = self.server.hub.snapshot(repo_id, segments[3], settings)
                self._file(snapshot, settings, "/".join(segments[4:]), head)
            else:
                raise HubError(404, "", f"no route for {url.path}")
        except HubError as error:
            body = json.dumps({"error": error.message}).encode()
            self.send_response(error.status)
            if error.code:
                self.send_header("X-Error-Code", error.code)
            self.send_header("X-Error-Message", error.message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

    def _api(self, rest: list[str], query: dict[str, list[str]], head: bool) -> None:
        repo_id = "/".join(rest[:2])
        settings = self.server.hub.authorize(repo_id, self._token())
        if len(rest) == 2:
            snapshot = self.server.hub.snapshot(repo_id, "main", settings)
            self._json(model_info(snapshot, settings.gated, _flag(query, "blobs")), head)
        elif len(rest) == 4 and rest[2] == "revision":
            snapshot = self.server.hub.snapshot(repo_id, rest[3], settings)
            self._json(model_info(snapshot, settings.gated, _flag(query, "blobs")), head)
        elif len(rest) >= 4 and rest[2] == "tree":
            snapshot = self.server.hub.snapshot(repo_id, rest[3], settings)
            listing = tree(snapshot, "/".join(rest[4:]), _flag(query, "recursive"))
            self._json(listing, head)
        else:
            raise HubError(404, "", f"no route for /api/models/{'/'.join(rest)}")

    def _json(self, value: object, head: bool) -> None:
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _file(self, snapshot: Snapshot, settings: RepoSettings, path: str, head: bool) -> None:
        found = snapshot.file(path)
        if found is None:
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {snapshot.commit}")
        start, end = 0, found.size
        wanted = self.headers.get("Range")
        if wanted:
            start, end = self._range(wanted, found.size)
        self.send_response(206 if wanted else 200)
        self.send_header("X-Repo-Commit", snapshot.commit)
        etag = found.sha256 or found.blob_id
        self.send_header("ETag", f'"{etag}"')
        if found.sha256 is not None:
            self.send_header("X-Linked-Etag", f'"{found.sha256}"')
            self.send_header("X-Linked-Size", str(found.size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{found.size}")
        self.end_headers()
        if not head:
            try:
                self._send_body(found, start, end, snapshot.repo_id, settings)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away mid-body

    def _range(self, header: str, size: int) -> tuple[int, int]:
        match = _RANGE.match(header.strip())
        if match is None or match.groups() == ("", ""):
            raise HubError(416, "", f"unsupported Range {header}")
        first, last = match.groups()
        if first == "":
            return max(0, size - int(last)), size
        start = int(first)
        end = min(size, int(last) + 1) if last else size
        if start >= size or end <= start:
            raise HubError(416, "", f"Range {header} is outside 0-{size}")
        return start, end

    def _send_body(
        self, found: RepoFile, start: int, end: int, repo_id: str, settings: RepoSettings
    ) -> None:
        throttles = [self.server.throttle, self.server.repo_throttle(repo_id, settings)]
        paced = [t for t in throttles if t is not None]
        step = _THROTTLED_SLICE if paced else _SLICE
        cut = self.server.cut_after
        if cut is not None and end - start > cut:
            end = start + cut  # the answer promised more: the client sees a broken transfer
            self.close_connection = True
        with found.disk.open("rb") as f:
            offset = start
            while offset < end:
                count = min(step, end - offset)
                for throttle in paced:
                    throttle.wait(count)
                sent = self.connection.sendfile(f, offset, count)
                self.server.stats.count(repo_id, found.path, sent)
                if sent == 0:
                    return
                offset += sent


class HubServer(ThreadingHTTPServer):
    """The hub on one address; `stats` counts what it served."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        root: Path,
        address: tuple[str, int] = ("127.0.0.1", 0),
        throttle: float | None = None,
        verbose: bool = False,
        cut_after: int | None = None,
    ) -> None:
        super().__init__(address, Handler)
        self.hub = Hub(root)
        self.stats = Stats()
        self.throttle = Throttle(throttle) if throttle else None
        self.verbose = verbose
        # Closes every file answer's connection after this many body bytes (a flaky network).
        self.cut_after = cut_after
        self._repo_throttles: dict[str, Throttle] = {}
        self._repo_lock = threading.Lock()

    def repo_throttle(self, repo_id: str, settings: RepoSettings) -> Throttle | None:
        """The pace of the repository's bodies (its `throttleMiBs`), shared by its answers;
        a new rate in `.hub.json` takes effect from the next answer on."""
        if settings.throttle_mib_s is None:
            return None
        rate = settings.throttle_mib_s * 1024 * 1024
        with self._repo_lock:
            found = self._repo_throttles.get(repo_id)
            if found is None or found.rate != rate:
                found = self._repo_throttles[repo_id] = Throttle(rate)
            return found

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> threading.Thread:
        """Serves on a daemon thread (for tests and benchmarks in one process)."""
        thread = threading.Thread(target=self.serve_forever, name="hubsim", daemon=True)
        thread.start()
        return thread
