"""Builds a component from a trimmed copy of its upstream module source (KEDA's scalers).

KEDA compiles every scaler into one package, `pkg/scalers`, and so every cloud
SDK it has a scaler for: about half of the 3,700 packages its three binaries
import. The local fleet uses a few triggers only. A `SourceTrim` says which
scaler files to keep and what the builder's trigger switch becomes; `prepare`
copies the pinned module (downloaded and verified against the wrapper's go.sum)
into a work folder, checks that the pinned files are the ones the trim was written
for (the switch file's sha256, every kept file present), deletes the other
scaler files, rewrites the switch between its markers, adds the few declarations
the kept files used from deleted ones, and writes a go.mod for
`go build -modfile`: the wrapper's own go.mod plus a `replace` of the upstream
module by the copy, and the wrapper's go.sum beside it. Everything else the
build selects stays what the committed wrapper pins.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path


class TrimError(RuntimeError):
    """The upstream source is not what the trim expects (a bumped version, a changed file)."""


@dataclass(frozen=True, slots=True)
class SourceTrim:
    """Delete `folder/*{suffix}` except `keep`; replace the `switch_file` lines between
    `start` and `end` (whose sha256 must be `switch_sha256`) by a switch over `cases`
    (trigger name -> Go statement), the default case an error naming the trigger; write
    the files of `add` (path -> Go source: what the kept files use from deleted ones)."""

    folder: str
    suffix: str
    keep: tuple[str, ...]
    switch_file: str
    switch_sha256: str
    start: str
    end: str
    cases: tuple[tuple[str, str], ...]
    unknown: str  # the default case's statement
    add: tuple[tuple[str, str], ...] = ()


def switch_text(trim: SourceTrim) -> str:
    """The Go lines that stand between the markers after trimming."""
    lines = ["\tswitch triggerType {"]
    for name, statement in trim.cases:
        lines += [f'\tcase "{name}":', f"\t\t{statement}"]
    lines += ["\tdefault:", f"\t\t{trim.unknown}", "\t}"]
    return "\n".join(lines) + "\n"


def rewrite_switch(text: str, trim: SourceTrim, where: str) -> str:
    """`text` with everything between the marker lines replaced by `switch_text`."""
    start, end = text.find(trim.start + "\n"), text.find(trim.end)
    if start < 0 or end < start:
        raise TrimError(f"{where}: markers {trim.start!r} ... {trim.end!r} not found in order")
    body_start = start + len(trim.start) + 1
    return text[:body_start] + switch_text(trim) + text[text.rfind("\n", 0, end) + 1 :]


def apply(source: Path, trim: SourceTrim, what: str) -> list[str]:
    """Trim the writable module copy at `source`; returns the names of deleted files."""
    switch = source / trim.switch_file
    found = hashlib.sha256(switch.read_bytes()).hexdigest() if switch.is_file() else "missing"
    if found != trim.switch_sha256:
        raise TrimError(
            f"{what}: {trim.switch_file} has sha256 {found}, the trim was written for "
            f"{trim.switch_sha256}; review the trim (components.py) for this version"
        )
    folder = source / trim.folder
    missing = [name for name in trim.keep if not (folder / name).is_file()]
    if missing:
        raise TrimError(f"{what}: {trim.folder} lacks {', '.join(missing)} (kept by the trim)")
    dropped = sorted(
        path.name for path in folder.glob(f"*{trim.suffix}") if path.name not in trim.keep
    )
    for path, _ in trim.add:
        if (source / path).exists():
            raise TrimError(f"{what}: {path} exists upstream; the trim would overwrite it")
    for name in dropped:
        (folder / name).unlink()
    for path, text in trim.add:
        (source / path).write_text(text)
    switch.write_text(rewrite_switch(switch.read_text(), trim, f"{what}: {trim.switch_file}"))
    return dropped


def prepare(module: Path, upstream: str, wrapper: Path, trim: SourceTrim, work: Path) -> Path:
    """Copy `module` (the upstream source) into `work`, trim it and write the go.mod that
    builds from the copy; returns the path to pass to `go build -modfile`."""
    shutil.rmtree(work, ignore_errors=True)
    source = work / "source"
    shutil.copytree(module, source)
    for path in [source, *source.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
    apply(source, trim, upstream)
    modfile = work / "go.mod"
    wrapper_mod = (wrapper / "go.mod").read_text()
    modfile.write_text(f"{wrapper_mod.rstrip()}\n\nreplace {upstream} => {source}\n")
    shutil.copyfile(wrapper / "go.sum", work / "go.sum")
    return modfile
