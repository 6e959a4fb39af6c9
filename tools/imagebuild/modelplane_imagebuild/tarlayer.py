"""Deterministic layer blobs: a folder becomes the same gzipped tar on every machine.

Entries are sorted, every timestamp is `mtime`, owners are root unless `owners` says
otherwise, modes are normalised (0755 for folders and executables, 0644 for other
files, unless `modes` says otherwise), hard links become plain files, and the GNU tar
format is used (long names without pax headers). Gzip is written with mtime 0 and no
file name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

GZIP_LEVEL = 6


@dataclass(frozen=True)
class Layer:
    """A written layer blob: its digests and sizes."""

    path: Path
    digest: str  # sha256 of the gzipped blob (the manifest's layer digest)
    diff_id: str  # sha256 of the uncompressed tar (the config's rootfs.diff_ids)
    size: int  # compressed bytes
    uncompressed_size: int


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to `target`."""

    def __init__(self, target: io.RawIOBase | io.BufferedIOBase | gzip.GzipFile) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha256.update(data)
        self.count += len(data)
        self.target.write(data)
        return len(data)


def _walk(root: Path) -> Iterator[Path]:
    """Every path under `root`, sorted by their relative names, folders before contents."""
    for directory, folders, files in os.walk(root):
        folders.sort()
        base = Path(directory)
        for name in sorted(folders + files):
            yield base / name


def _entry(path: Path, name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        info.mode = 0o777
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif stat.S_ISREG(mode):
        info.type = tarfile.REGTYPE
        info.size = path.stat().st_size
        info.mode = 0o755 if mode & 0o111 else 0o644
    else:
        raise ValueError(f"{path}: only files, folders and symlinks go into a layer")
    return info


def write_layer(
    root: Path,
    out: Path,
    mtime: int,
    owners: Mapping[str, tuple[int, int]] | None = None,
    modes: Mapping[str, int] | None = None,
) -> Layer:
    """Writes `root`'s tree as a gzipped tar at `out`; names are relative to `root`."""
    owners = owners or {}
    modes = modes or {}
    with out.open("wb") as blob:
        compressed = _Hashing(blob)
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, compresslevel=GZIP_LEVEL, mtime=0
        ) as zipped:
            uncompressed = _Hashing(zipped)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for path in _walk(root):
                    name = path.relative_to(root).as_posix()
                    info = _entry(path, name, mtime)
                    info.uid, info.gid = owners.get(name, (0, 0))
                    info.mode = modes.get(name, info.mode)
                    if info.type == tarfile.REGTYPE:
                        with path.open("rb") as file:
                            tar.addfile(info, file)
                    else:
                        tar.addfile(info)
    return Layer(
        path=out,
        digest="sha256:" + compressed.sha256.hexdigest(),
        diff_id="sha256:" + uncompressed.sha256.hexdigest(),
        size=compressed.count,
        uncompressed_size=uncompressed.count,
    )
