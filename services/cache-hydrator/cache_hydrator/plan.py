"""(pure) What a hydration run does, from the hub's listing and what is already on the volume.

`decide` keeps the files already verified at this content, resumes partial downloads from
their length, removes files of an earlier listing that this one no longer has, and fails
before downloading anything when `sizeGiB` or the volume's free space is below what the
repository needs.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
REPO = "spec.huggingFace.repo"
REVISION = "spec.huggingFace.revision"
SIZE = "spec.huggingFace.sizeGiB"
AUTH = "spec.huggingFace.authSecret"


class HydrationError(Exception):
    """A run that cannot succeed: the field to change (empty when none is at fault) and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


@dataclass(frozen=True)
class RemoteFile:
    """A file of the resolved commit, with the checksum the hub publishes for it."""

    path: str
    size: int
    blob_id: str  # the git object id; of the content when `sha256` is unset
    sha256: str | None  # set for LFS files

    @property
    def checksum(self) -> str:
        """What verification compares: the LFS sha256, else the git object id."""
        return self.sha256 or self.blob_id


@dataclass(frozen=True)
class Listing:
    repo: str
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class OnDisk:
    """The volume before the run: verified files (path -> checksum and size), partial
    downloads (path -> bytes written) and the free bytes."""

    verified: dict[str, tuple[str, int]]
    partial: dict[str, int]
    free_bytes: int


@dataclass(frozen=True)
class Fetch:
    file: RemoteFile
    resume_from: int


@dataclass(frozen=True)
class Plan:
    keep: tuple[RemoteFile, ...]
    fetch: tuple[Fetch, ...]
    remove: tuple[str, ...]  # verified files of an earlier listing
    drop_partial: tuple[str, ...]  # partial downloads that cannot be resumed

    @property
    def bytes_on_disk(self) -> int:
        return sum(f.size for f in self.keep) + sum(f.resume_from for f in self.fetch)


def human(nbytes: int) -> str:
    return f"{nbytes / GIB:.2f} GiB" if nbytes >= GIB else f"{nbytes / 1024**2:.1f} MiB"


def check_size(size_gib: int | None, repo: str, commit: str, total: int, files: int) -> None:
    """Fails when `sizeGiB` is below the repository's size."""
    if size_gib is not None and total > size_gib * GIB:
        raise HydrationError(
            SIZE,
            f"{size_gib} GiB is below the size of {repo} at {commit} "
            f"({human(total)} in {files} files)",
        )


def decide(listing: Listing, disk: OnDisk, size_gib: int | None) -> Plan:
    total = listing.total_bytes
    check_size(size_gib, listing.repo, listing.commit, total, len(listing.files))
    wanted = {f.path: f for f in listing.files}
    keep = tuple(f for f in listing.files if disk.verified.get(f.path) == (f.checksum, f.size))
    kept = {f.path for f in keep}
    fetch = tuple(
        Fetch(f, disk.partial.get(f.path, 0) if disk.partial.get(f.path, 0) <= f.size else 0)
        for f in listing.files
        if f.path not in kept
    )
    remove = tuple(sorted(p for p in disk.verified if p not in kept))
    drop = tuple(
        sorted(
            p for p, n in disk.partial.items() if p not in wanted or p in kept or n > wanted[p].size
        )
    )
    plan = Plan(keep, fetch, remove, drop)
    # Removed and dropped files are deleted before anything is fetched.
    freed = sum(disk.verified[p][1] for p in remove) + sum(disk.partial[p] for p in drop)
    needed = total - plan.bytes_on_disk
    if needed > disk.free_bytes + freed:
        raise HydrationError(
            SIZE,
            f"the volume is full: {human(disk.free_bytes)} free, {human(needed)} of "
            f"{listing.repo} still to fetch",
        )
    return plan
