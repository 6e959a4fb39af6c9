"""Unpacking image layers into a root filesystem, as a container runtime's snapshotter does.

`unpack_image(layers, target)` applies each layer tar (plain or gzip) in order
in a scratch directory beside `target`, then renames it into place with a
`.complete` marker, so a half-unpacked image is never used. Within a layer,
whiteouts are applied first: `.wh.NAME` deletes NAME from the layers below and
`.wh..wh..opq` empties its directory of them. Every path is resolved inside the
root: a name or hard link that climbs out (`..`) is refused with
`LayerError`, and a symbolic link met on the way is followed as the container
would see it (an absolute target is taken from the root), never onto the
machine's own files. Owners, modes and modification times are kept; device
nodes are skipped (the container gets /dev from the agent).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
COMPLETE = ".complete"
_MAX_LINKS = 40


class LayerError(Exception):
    """A layer cannot be applied safely; the message names the layer and the entry."""


def unpack_image(layers: Sequence[Path], target: Path) -> None:
    if (target / COMPLETE).exists():
        return
    scratch = target.with_name(f".{target.name}.partial")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for layer in layers:
        apply_layer(layer, scratch)
    (scratch / COMPLETE).write_text("")
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)


def _parts(name: str, layer: Path) -> list[str]:
    """The entry's path components below the root; refuses one that climbs out of it."""
    parts: list[str] = []
    for part in PurePosixPath(name.lstrip("/")).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LayerError(f"layer {layer.name}: entry {name!r} escapes the root")
            parts.pop()
        else:
            parts.append(part)
    return parts


def resolve(root: Path, parts: Sequence[str], layer: Path, follow_last: bool = False) -> Path:
    """`parts` under `root`, following symbolic links as if `root` were `/`."""
    resolved: list[str] = []
    pending = list(parts)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        if part in ("", "."):
            continue
        here = root.joinpath(*resolved, part)
        if (pending or follow_last) and here.is_symlink():
            hops += 1
            if hops > _MAX_LINKS:
                raise LayerError(f"layer {layer.name}: too many symbolic links at {here}")
            link = os.readlink(here)
            if link.startswith("/"):
                resolved = []
            pending = [p for p in link.split("/") if p] + pending
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def apply_layer(layer: Path, root: Path) -> None:
    with tarfile.open(layer, "r:*") as archive:
        members = archive.getmembers()
        for member in members:
            parts = _parts(member.name, layer)
            if not parts or not parts[-1].startswith(WHITEOUT):
                continue
            parent = resolve(root, parts[:-1], layer, follow_last=True)
            if parts[-1] == OPAQUE:
                if parent.is_dir():
                    for child in list(parent.iterdir()):
                        _remove(child)
            else:
                gone = parent / parts[-1].removeprefix(WHITEOUT)
                if gone.exists() or gone.is_symlink():
                    _remove(gone)
        for member in members:
            parts = _parts(member.name, layer)
            if parts and not parts[-1].startswith(WHITEOUT):
                _extract(archive, member, root, parts, layer)


def _extract(
    archive: tarfile.TarFile, member: tarfile.TarInfo, root: Path, parts: list[str], layer: Path
) -> None:
    path = resolve(root, parts[:-1], layer, follow_last=True) / parts[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    exists = path.exists() or path.is_symlink()
    if member.isdir():
        if exists and not (path.is_dir() and not path.is_symlink()):
            _remove(path)
        path.mkdir(exist_ok=True)
    elif member.isreg():
        if exists:
            _remove(path)
        source = archive.extractfile(member)
        assert source is not None
        with source, path.open("xb") as out:
            shutil.copyfileobj(source, out)
    elif member.issym():
        if exists:
            _remove(path)
        os.symlink(member.linkname, path)
    elif member.islnk():
        link_parts = _parts(member.linkname, layer)
        if not link_parts:
            raise LayerError(f"layer {layer.name}: hard link {member.name!r} to the root")
        source_path = resolve(root, link_parts, layer)
        if not source_path.exists() or source_path.is_dir():
            raise LayerError(
                f"layer {layer.name}: hard link {member.name!r} to missing {member.linkname!r}"
            )
        if exists:
            _remove(path)
        os.link(source_path, path)
    elif member.isfifo():
        if exists:
            _remove(path)
        os.mkfifo(path)
    else:
        return  # character and block devices
    os.lchown(path, member.uid, member.gid)
    if not member.issym():
        os.chmod(path, stat.S_IMODE(member.mode))
        os.utime(path, (member.mtime, member.mtime))
