"""The three folder trees that become the image's layers.

- `system_tree`: Debian bookworm's CPython 3.11 and the shared libraries it needs,
  unpacked from the pinned packages (merged /usr, no shell), plus the non-root user.
- `third_party_tree`: the pinned wheels in /usr/lib/python3/dist-packages.
- `app_tree`: the project's wheel in /usr/local/lib/python3.11/dist-packages and one
  launcher per console script in /usr/local/bin.

Python files are compiled to `.pyc` with unchecked hashes (no timestamps) in a fresh
interpreter with a fixed hash seed, so the bytes do not depend on the build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from modelplane_imagebuild import debs, pydeps

USER = "nonroot"
UID = 65532
HOME = f"home/{USER}"
PYTHON = "/usr/bin/python3.11"
STDLIB = "usr/lib/python3.11"
THIRD_PARTY = "usr/lib/python3/dist-packages"
APP_SITE = "usr/local/lib/python3.11/dist-packages"
APP_BIN = "usr/local/bin"
MERGED = ("bin", "sbin", "lib", "lib64")
DOCS = ("usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/locale")

# Owners and modes that differ from root-owned 0755/0644 (see tarlayer).
SYSTEM_OWNERS = {HOME: (UID, UID)}
SYSTEM_MODES = {HOME: 0o700, "tmp": 0o1777}

_COMPILE = """
import compileall, py_compile, sys
root, image_path = sys.argv[1], sys.argv[2]
ok = compileall.compile_dir(root, ddir=image_path, quiet=1, workers=1,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def compile_tree(tree: Path, relative: str) -> None:
    """Writes `.pyc` files beside the sources under `tree/relative` (deterministically)."""
    if sys.version_info[:2] != (3, 11):
        raise RuntimeError(f"the image builder needs CPython 3.11 (bytecode), not {sys.version}")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(
        [sys.executable, "-I", "-c", _COMPILE, str(tree / relative), "/" + relative],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _merge_into(source: Path, target: Path) -> None:
    """Moves `source`'s contents into `target`, merging folders that exist in both."""
    target.mkdir(parents=True, exist_ok=True)
    for child in sorted(source.iterdir()):
        destination = target / child.name
        if child.is_dir() and not child.is_symlink() and destination.is_dir():
            _merge_into(child, destination)
        else:
            os.replace(child, destination)
    source.rmdir()


def merge_usr(tree: Path) -> None:
    """Makes /bin, /sbin, /lib and /lib64 links into /usr, as bookworm installs them."""
    for name in MERGED:
        top = tree / name
        if top.is_dir() and not top.is_symlink():
            _merge_into(top, tree / "usr" / name)
        if not top.is_symlink():
            top.symlink_to(f"usr/{name}")


def prune_docs(tree: Path) -> None:
    """Drops manuals and translations; keeps each package's copyright file."""
    for relative in DOCS:
        shutil.rmtree(tree / relative, ignore_errors=True)
    doc = tree / "usr/share/doc"
    for package in sorted(doc.iterdir()) if doc.is_dir() else []:
        if package.is_symlink():  # e.g. libgcc-s1 -> gcc-12-base
            continue
        for path in sorted(package.iterdir()):
            if path.name == "copyright":
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def add_user(tree: Path) -> None:
    """Root and the non-root user the services run as; /tmp; name lookups from files."""
    etc = tree / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{USER}:x:{UID}:{UID}:{USER}:/{HOME}:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{USER}:x:{UID}:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    for folder in ("root", HOME, "tmp"):
        (tree / folder).mkdir(parents=True, exist_ok=True)


def system_tree(packages: list[Path], tree: Path) -> None:
    """The Debian runtime: unpacked packages, merged /usr, `python3`, the user."""
    for package in packages:
        debs.unpack(package, tree)
    merge_usr(tree)
    prune_docs(tree)
    (tree / "usr/bin/python3").symlink_to("python3.11")
    add_user(tree)
    compile_tree(tree, STDLIB)


def third_party_tree(uv: Path, requirements: str, tree: Path) -> None:
    """The pinned third-party wheels, installed for the image's interpreter."""
    site = tree / THIRD_PARTY
    with tempfile.TemporaryDirectory() as scratch:
        listed = Path(scratch) / "runtime.txt"
        listed.write_text(requirements)
        pydeps.install_third_party(uv, listed, site)
    shutil.rmtree(site / "bin", ignore_errors=True)  # launchers for the builder's Python
    (site / ".lock").unlink(missing_ok=True)  # uv's lock of the target folder
    compile_tree(tree, THIRD_PARTY)


def app_tree(uv: Path, source: Path, tree: Path) -> list[str]:
    """The project's wheel and its console scripts; returns the scripts' names."""
    site = tree / APP_SITE
    site.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch:
        pydeps.unpack_wheel(pydeps.build_wheel(uv, source, Path(scratch)), site)
    scripts = pydeps.console_scripts(site)
    (tree / APP_BIN).mkdir(parents=True)
    for name, target in sorted(scripts.items()):
        pydeps.write_script(tree / APP_BIN / name, target, PYTHON)
    compile_tree(tree, APP_SITE)
    return sorted(scripts)
