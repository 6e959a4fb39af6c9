"""The pinned Debian package set of the runtime layer: resolve, lock, fetch, verify, unpack.

The lock (`tools/imagebuild/debs.lock`) lists one package a line as
`name version sha256`. `resolve` walks the dependencies of `ROOTS` with the machine's apt
(first alternative of each group, never a package of `EXCLUDED`: no shell, no package
manager). `fetch` downloads the pinned `.deb` files with `apt-get download`, checks each
SHA-256 and keeps them in a cache named by hash, so a second build downloads nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Bookworm's CPython and the C++ runtime that the grpcio and google-re2 wheels link to.
ROOTS = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6")
# Shells, coreutils and package-management tools: the image runs no maintainer scripts.
EXCLUDED = frozenset(
    {"bash", "dash", "coreutils", "debconf", "dpkg", "install-info", "perl-base", "tar"}
)
LOCK_HEADER = (
    "# The Debian packages of the image's runtime layer: name version sha256.\n"
    "# Regenerate with `tools/image lock` (resolves with this machine's apt sources).\n"
)
_DEPENDS = re.compile(r"^ (?P<alt>[ |])(?:Pre)?Depends: (?P<name>\S+)")


class DebError(RuntimeError):
    """A package could not be resolved, downloaded or verified."""


@dataclass(frozen=True)
class Deb:
    """One pinned Debian package."""

    name: str
    version: str
    sha256: str


def _apt(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        raise DebError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def direct_dependencies(names: list[str]) -> dict[str, list[str]]:
    """What each package needs: the first allowed alternative of each dependency group."""
    out = _apt(
        "apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
        "--no-breaks", "--no-replaces", "--no-enhances", *names,
    )  # fmt: skip
    groups: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    continues = False
    for line in out.splitlines():
        if not line.startswith(" "):
            current = groups.setdefault(line.strip(), [])
            continues = False
            continue
        match = _DEPENDS.match(line)
        if not match:
            continue
        if not continues:
            current.append([])
        current[-1].append(match["name"])
        continues = match["alt"] == "|"
    return {
        name: [allowed[0] for allowed in (_allowed(g) for g in package_groups) if allowed]
        for name, package_groups in groups.items()
    }


def _allowed(group: list[str]) -> list[str]:
    return [n for n in group if not n.startswith("<") and n not in EXCLUDED]


def candidates(names: list[str]) -> list[Deb]:
    """The versions apt would install now, with their SHA-256 from the archive's index."""
    out = _apt("apt-cache", "show", "--no-all-versions", *names)
    debs = []
    for stanza in out.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in stanza.splitlines()
            if ": " in line and not line.startswith(" ")
        )
        if "SHA256" not in fields:
            raise DebError(f"apt-cache show {fields.get('Package', '?')}: no SHA256 field")
        debs.append(Deb(fields["Package"], fields["Version"], fields["SHA256"]))
    return sorted(debs, key=lambda d: d.name)


def resolve(roots: tuple[str, ...] = ROOTS) -> list[Deb]:
    """The closure of `roots` under `direct_dependencies`, pinned to today's candidates."""
    seen: set[str] = set()
    level = list(roots)
    while level:
        seen.update(level)
        needs = direct_dependencies(level)
        level = sorted({n for deps in needs.values() for n in deps} - seen)
    return candidates(sorted(seen))


def write_lock(path: Path, debs: list[Deb]) -> None:
    """Writes the lock file."""
    body = "".join(f"{d.name} {d.version} {d.sha256}\n" for d in debs)
    path.write_text(LOCK_HEADER + body)


def read_lock(path: Path) -> list[Deb]:
    """The lock file's packages; a malformed line is an error naming the file and line."""
    debs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{64}", parts[2]):
            raise DebError(f"{path}:{number}: expected `name version sha256`, got {line!r}")
        debs.append(Deb(*parts))
    return debs


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(debs: list[Deb], cache: Path) -> list[Path]:
    """The cached `.deb` file of each package, downloading and verifying the missing ones."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = [cache / f"{d.sha256}.deb" for d in debs]
    missing = [d for d, p in zip(debs, paths, strict=True) if not p.exists()]
    if missing:
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            _apt("apt-get", "download", *(f"{d.name}={d.version}" for d in missing),
                 cwd=Path(scratch))  # fmt: skip
            for deb in missing:
                (file,) = Path(scratch).glob(f"{deb.name}_*.deb")
                actual = _sha256(file)
                if actual != deb.sha256:
                    raise DebError(
                        f"{deb.name} {deb.version}: sha256 {actual} does not match the lock's "
                        f"{deb.sha256}"
                    )
                shutil.move(file, cache / f"{deb.sha256}.deb")
    return paths


def unpack(deb: Path, into: Path) -> None:
    """Extracts the files of one package (no maintainer scripts run)."""
    _apt("dpkg-deb", "--extract", str(deb), str(into))
