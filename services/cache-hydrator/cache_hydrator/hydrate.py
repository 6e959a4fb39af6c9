"""The hydration job (`modelplane-hydrate`): fills a cache volume with one repository at one
revision, checks every file, and marks the volume Ready with the resolved commit.

observe (the marker, the hub's listing, the volume) -> decide (`plan.decide`) -> apply
(remove, fetch in parallel with resume, place each verified file, write the marker).

A volume whose marker names the same repository and revision is Ready at once: nothing is
fetched and the hub is not asked again, so a branch is resolved once per volume (a new
revision in the ModelCache makes a new run resolve it). A run killed half-way keeps every
verified file and every partial download; the next run resumes them. Nothing partial is
ever marked: the marker is written after the last file is verified and removed before a
run changes anything.

Exit status: 0 Ready, 1 Failed (the status file's message names the cause and the field),
2 a command-line error.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants

from cache_hydrator.hub import CorruptedError, Hub, StoppedError
from cache_hydrator.plan import (
    AUTH,
    REPO,
    SIZE,
    Fetch,
    HydrationError,
    Listing,
    check_size,
    decide,
    human,
)
from cache_hydrator.progress import Progress, Reporter, Status
from cache_hydrator.report import ConfigMapReport
from cache_hydrator.volume import Volume


@dataclass(frozen=True)
class Request:
    hub: Hub
    directory: Path
    size_gib: int | None
    workers: int


def hydrate(request: Request, progress: Progress) -> None:
    """Brings the volume to Ready or raises `HydrationError`."""
    volume = Volume(request.directory)
    with volume.exclusive():
        _hydrate(request, volume, progress)


def _hydrate(request: Request, volume: Volume, progress: Progress) -> None:
    hub = request.hub
    marker = volume.read_marker()
    if marker and (marker["repo"], marker["revision"]) == (hub.repo, hub.revision):
        check_size(
            request.size_gib, hub.repo, marker["commit"], marker["bytes"], len(marker["files"])
        )
        progress.set(
            phase="Ready",
            step="done",
            commit=marker["commit"],
            bytesDone=marker["bytes"],
            bytesTotal=marker["bytes"],
            filesDone=len(marker["files"]),
            filesTotal=len(marker["files"]),
            message=f"{hub.repo} at {marker['commit']} was already hydrated",
        )
        return
    volume.clear_marker()
    listing = hub.resolve()
    progress.set(
        commit=listing.commit, bytesTotal=listing.total_bytes, filesTotal=len(listing.files)
    )
    plan = decide(listing, volume.observe(), request.size_gib)
    volume.clear(plan)
    progress.set(step="downloading", bytesDone=plan.bytes_on_disk, filesDone=len(plan.keep))
    _fetch_all(request, listing, plan.fetch, volume, progress)
    volume.write_marker(
        {
            "repo": hub.repo,
            "revision": hub.revision,
            "commit": listing.commit,
            "bytes": listing.total_bytes,
            "files": {f.path: f.size for f in listing.files},
        }
    )
    progress.set(
        phase="Ready",
        step="done",
        message=f"{hub.repo} at {listing.commit}: {len(listing.files)} files, "
        f"{human(listing.total_bytes)}, verified",
    )


def _fetch_all(
    request: Request,
    listing: Listing,
    fetches: tuple[Fetch, ...],
    volume: Volume,
    progress: Progress,
) -> None:
    """Fetches in parallel; the first failure stops the others where they are."""
    stop = threading.Event()

    def count(n: int) -> None:
        progress.add_bytes(n, max(n, 0))

    def one(fetch: Fetch) -> None:
        partial = volume.partial(fetch.file.path)
        for attempt in (1, 2):
            try:
                request.hub.fetch(listing.commit, fetch.file, partial, count, stop)
                break
            except CorruptedError as error:
                # A corrupted partial download cannot be resumed: start this file over once.
                partial.unlink(missing_ok=True)
                progress.add_bytes(-error.nbytes, 0)
                if attempt == 2:
                    raise HydrationError(
                        REPO,
                        f"a file of {listing.repo} at {listing.commit} arrived corrupted twice: "
                        f"{error}",
                    ) from error
        volume.place(fetch.file.path, fetch.file.checksum, fetch.file.size)
        progress.file_done()

    with ThreadPoolExecutor(max_workers=request.workers, thread_name_prefix="fetch") as pool:
        futures = [pool.submit(one, f) for f in fetches]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [e for f in done if (e := f.exception()) is not None]
        if errors:
            stop.set()
            wait(futures)
            raise next(e for e in errors if not isinstance(e, StoppedError))


def read_token(token_file: Path | None) -> str | None:
    """The token from the copied Secret's file, else `HF_TOKEN`; none when neither is set."""
    if token_file is None:
        return os.environ.get("HF_TOKEN") or None
    try:
        token = token_file.read_text().strip()
    except OSError as error:
        raise HydrationError(
            AUTH, f"cannot read the token file {token_file}: {error.strerror}"
        ) from None
    if not token:
        raise HydrationError(AUTH, f"the token file {token_file} is empty")
    return token


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="modelplane-hydrate",
        description="Download a Hugging Face repository at a revision into a cache volume, "
        "verify every file, and mark it Ready (services/cache-hydrator/README.md).",
    )
    parse.add_argument("--repo", required=True, help="the repository id, e.g. Qwen/Qwen3-0.6B")
    parse.add_argument(
        "--revision", default=constants.DEFAULT_REVISION, help="branch, tag or commit"
    )
    parse.add_argument("--dir", type=Path, required=True, help="the cache volume's folder")
    parse.add_argument(
        "--size-gib", type=int, help="the volume's size (sizeGiB): a repository larger fails"
    )
    parse.add_argument("--token-file", type=Path, help="a file holding the token (else $HF_TOKEN)")
    parse.add_argument(
        "--endpoint",
        default=os.environ.get("HF_ENDPOINT", constants.ENDPOINT),
        help="the hub (default: $HF_ENDPOINT, else the public Hub)",
    )
    parse.add_argument("--status-file", type=Path, help="default: DIR/.modelplane/status.json")
    parse.add_argument(
        "--interval", type=float, default=2.0, help="seconds between reports (at most 5)"
    )
    parse.add_argument("--workers", type=int, default=8, help="files fetched at once")
    parse.add_argument(
        "--report-configmap",
        help="also publish each report into this ConfigMap of the pod's namespace "
        "(in-cluster credentials; cache-hydrator mirrors it)",
    )
    return parse


def main(argv: list[str] | None = None) -> None:
    parse = parser()
    args = parse.parse_args(argv)
    if not 0 < args.interval <= 5:
        parse.error(f"--interval {args.interval}: must be above 0 and at most 5 seconds")
    if args.workers < 1:
        parse.error(f"--workers {args.workers}: must be at least 1")
    if args.size_gib is not None and args.size_gib < 1:
        parse.error(f"--size-gib {args.size_gib}: must be at least 1")
    status_file = args.status_file or args.dir / ".modelplane" / "status.json"
    try:
        publish = ConfigMapReport(args.report_configmap) if args.report_configmap else None
    except (ValueError, OSError) as error:
        parse.error(str(error))
    status = Status(repo=args.repo, revision=args.revision)
    progress = Progress(status, status_file, sys.stdout, publish)
    with Reporter(progress, args.interval):
        try:
            hub = Hub(
                args.endpoint.rstrip("/"), args.repo, args.revision, read_token(args.token_file)
            )
            hydrate(Request(hub, args.dir, args.size_gib, args.workers), progress)
        except HydrationError as failed:
            progress.set(phase="Failed", message=str(failed))
        except OSError as error:
            progress.set(phase="Failed", message=_os_error(error, args.dir))
        except Exception as error:  # a status file that stays Hydrating helps no one
            progress.set(phase="Failed", message=f"unexpected error: {error!r}")
            raise
    sys.exit(0 if progress.snapshot().phase == "Ready" else 1)


def _os_error(error: OSError, directory: Path) -> str:
    if error.errno in {errno.ENOSPC, errno.EDQUOT}:
        return f"{SIZE}: the volume is full: writing to {directory} failed ({error.strerror})"
    return f"cannot write the volume at {directory}: {error}"


if __name__ == "__main__":
    main()
