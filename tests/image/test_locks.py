"""The image's pins: the .deb lock's format and content, and the runtime part of
requirements.lock (fast: no build)."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelplane_imagebuild import debs, pydeps

from tests.image.conftest import ROOT

LOCK = """\
alpha==1.0 \\
    --hash=sha256:aaaa
    # via modelplane (pyproject.toml)
beta==2.0 \\
    --hash=sha256:bbbb
    # via
    #   alpha
    #   pytest
pytest==8.0 \\
    --hash=sha256:cccc
    # via modelplane (pyproject.toml)
pluggy==1.0 \\
    --hash=sha256:dddd
    # via pytest
"""


def test_the_runtime_lock_keeps_the_dependencies_and_what_they_pull_in() -> None:
    runtime = pydeps.runtime_lock(LOCK, {"project": {"dependencies": ["Alpha>=1"]}})
    assert runtime == (
        "alpha==1.0 \\\n    --hash=sha256:aaaa\nbeta==2.0 \\\n    --hash=sha256:bbbb\n"
    )


def test_a_dependency_missing_from_the_lock_is_named() -> None:
    with pytest.raises(pydeps.PythonBuildError, match=r"no entry for dependencies \['gamma'\]"):
        pydeps.runtime_lock(LOCK, {"project": {"dependencies": ["alpha", "gamma==3"]}})


def test_the_committed_deb_lock_pins_python_without_a_shell() -> None:
    pinned = {deb.name: deb for deb in debs.read_lock(ROOT / "tools/imagebuild/debs.lock")}
    assert {"python3.11-minimal", "libpython3.11-stdlib", "libc6", "libstdc++6"} <= set(pinned)
    assert {"bash", "dash", "coreutils", "dpkg", "perl-base"} & set(pinned) == set()
    assert pinned["python3.11-minimal"].version.startswith("3.11.")


def test_a_malformed_deb_lock_line_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "debs.lock"
    lock.write_text("# header\nlibc6 2.36-9 " + "a" * 64 + "\nzlib1g 1.2.13\n")
    with pytest.raises(debs.DebError, match=r"debs.lock:3: expected `name version sha256`"):
        debs.read_lock(lock)
