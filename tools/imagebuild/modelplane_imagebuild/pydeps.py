"""The Python side of the image: the runtime part of `requirements.lock` and the project wheel.

`requirements.lock` pins the runtime and the dev dependencies together. `runtime_lock`
keeps the entries the services need: the project's `[project.dependencies]` and, from
the lock's `# via` comments, everything they pull in, each with its hashes, so the image
installs exactly the versions the tests ran with.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

PYTHON_PLATFORM = "x86_64-manylinux_2_36"  # bookworm's glibc 2.36
PROJECT_VIA = "modelplane (pyproject.toml)"
_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
# What is not source in a checkout (as .containerignore leaves it out of a build context).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".hypothesis",
)  # fmt: skip


class PythonBuildError(RuntimeError):
    """Installing the image's Python packages failed."""


@dataclass(frozen=True)
class Entry:
    """One pinned requirement of the lock: its text (with hashes) and who needs it."""

    name: str
    text: str
    via: tuple[str, ...]


def normalize(name: str) -> str:
    """The PEP 503 form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> list[Entry]:
    """Every entry of a `uv pip compile` lock with its `# via` parents."""
    entries: list[Entry] = []
    lines: list[str] = []
    via: list[str] = []
    name = ""

    def close() -> None:
        if name:
            entries.append(Entry(name, "\n".join(lines), tuple(via)))

    for line in text.splitlines():
        match = _REQUIREMENT.match(line)
        if match:
            close()
            name, lines, via = normalize(match["name"]), [line], []
        elif line.startswith("    --hash") and name:
            lines.append(line)
        elif line.strip().startswith("# via") and line.strip() != "# via":
            via.append(line.strip().removeprefix("# via").strip())
        elif line.strip().startswith("#   "):
            via.append(line.strip().removeprefix("#").strip())
    close()
    return entries


def runtime_lock(lock: str, pyproject: dict[str, object]) -> str:
    """The lock's entries the installed services need, in the lock's format and order."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    direct = {normalize(_NAME.match(d)[0]) for d in project["dependencies"]}  # type: ignore[index]
    entries = parse_lock(lock)
    unknown = direct - {e.name for e in entries}
    if unknown:
        raise PythonBuildError(f"requirements.lock: no entry for dependencies {sorted(unknown)}")
    needed = set(direct)
    changed = True
    while changed:
        changed = False
        for entry in entries:
            parents = {normalize(v.split(" ")[0]) for v in entry.via if v != PROJECT_VIA}
            if entry.name not in needed and parents & needed:
                needed.add(entry.name)
                changed = True
    return "".join(e.text + "\n" for e in entries if e.name in needed)


def install_third_party(uv: Path, requirements: Path, target: Path) -> None:
    """Installs the pinned wheels for bookworm's CPython 3.11 into `target` (no sdists)."""
    command = [
        str(uv), "pip", "install", "--quiet", "--target", str(target), "--no-deps",
        "--python-platform", PYTHON_PLATFORM, "--python-version", "3.11",
        "--only-binary", ":all:", "--require-hashes", "-r", str(requirements),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PythonBuildError(f"uv pip install --target {target}: {done.stderr.strip()}")


def _uv_build(uv: Path, source: Path, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [str(uv), "build", "--quiet", "--wheel", *flags, "--out-dir", str(out), str(source)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def build_wheel(uv: Path, source: Path, out: Path) -> Path:
    """The project's wheel, always rebuilt (it is the fast layer), from a clean copy of
    `source`: setuptools would otherwise pack stale files from the checkout's `build/`.
    uv's cache serves the build backend when it can (`--offline`), else the index does."""
    clean = out / "source"
    shutil.copytree(source, clean, symlinks=True, ignore=NOT_SOURCE)
    done = _uv_build(uv, clean, out, "--offline")
    if done.returncode != 0:
        done = _uv_build(uv, clean, out)
    if done.returncode != 0:
        raise PythonBuildError(f"uv build --wheel {source}: {done.stderr.strip()}")
    (wheel,) = out.glob("*.whl")
    return wheel


def unpack_wheel(wheel: Path, site: Path) -> None:
    """Installs a pure-Python wheel by unpacking it (the project's has no `.data` folder)."""
    with zipfile.ZipFile(wheel) as archive:
        data = [n for n in archive.namelist() if n.split("/")[0].endswith(".data")]
        if data:
            raise PythonBuildError(f"{wheel.name}: .data entries are not supported: {data[:3]}")
        archive.extractall(site)


def console_scripts(site: Path) -> dict[str, str]:
    """`name -> module:function` of each console script whose package is installed."""
    scripts: dict[str, str] = {}
    for entry_points in sorted(site.glob("*.dist-info/entry_points.txt")):
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(entry_points)
        if not parser.has_section("console_scripts"):
            continue
        for name, target in parser.items("console_scripts"):
            package = target.split(":")[0].split(".")[0].strip()
            if (site / package).is_dir():
                scripts[name] = target.strip()
    return scripts


def write_script(path: Path, target: str, python: str) -> None:
    """A console-script launcher running `module:function` with `python`."""
    module, function = target.split(":")
    path.write_text(
        f"#!{python}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n"
    )
    path.chmod(0o755)


def load_pyproject(path: Path) -> dict[str, object]:
    """The parsed pyproject.toml."""
    with path.open("rb") as file:
        return tomllib.load(file)
