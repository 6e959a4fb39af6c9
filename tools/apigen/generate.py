"""Writes the modelplane.ai CRDs (crds/, and the same files into the Helm chart's
charts/modelplane/crds/) and the API's names (lib/modelplane/api/names.py).

Usage: ``generate.py`` writes every output; ``generate.py --check`` regenerates in
memory and exits 1, naming each stale or missing file with a short diff, when a
committed output differs. Stale CRD files of kinds that no longer exist are
reported (and removed when writing).

Guarantees: output depends only on ``tools.apigen.api`` and the pinned ruff that
formats the names module, so ``--check`` passes right after a write.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.apigen.api import GROUP, KINDS  # noqa: E402
from tools.apigen.crdgen import crd_files  # noqa: E402
from tools.apigen.pygen import names_module  # noqa: E402

NAMES_PATH = "lib/modelplane/api/names.py"
CRD_DIRS = ("crds", "charts/modelplane/crds")
"""Where each CRD file is written: the repository's API and the Helm chart's crds/."""


def _ruff_format(source: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", NAMES_PATH, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"ruff format failed on the generated names:\n{result.stderr}")
    return result.stdout


def outputs() -> dict[str, str]:
    """Every generated file, relative path to content."""
    files = {
        f"{directory}/{Path(rel).name}": text
        for rel, text in crd_files(KINDS).items()
        for directory in CRD_DIRS
    }
    files[NAMES_PATH] = _ruff_format(names_module(KINDS))
    return files


def _stale_crds(files: dict[str, str]) -> list[Path]:
    return sorted(
        p
        for directory in CRD_DIRS
        for p in (ROOT / directory).glob(f"{GROUP}_*.yaml")
        if str(p.relative_to(ROOT)) not in files
    )


def check(files: dict[str, str]) -> int:
    problems: list[str] = []
    for rel, want in sorted(files.items()):
        path = ROOT / rel
        if not path.exists():
            problems.append(f"{rel}: missing")
            continue
        have = path.read_text()
        if have != want:
            diff = list(
                difflib.unified_diff(
                    have.splitlines(), want.splitlines(), "committed", "generated", lineterm=""
                )
            )
            shown = "\n".join(diff[:40])
            more = f"\n... {len(diff) - 40} more diff lines" if len(diff) > 40 else ""
            problems.append(f"{rel}: stale\n{shown}{more}")
    problems.extend(f"{p.relative_to(ROOT)}: no longer generated" for p in _stale_crds(files))
    if problems:
        print("generated API files are stale; run tools/generate:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    return 0


def write(files: dict[str, str]) -> None:
    for p in _stale_crds(files):
        p.unlink()
    for rel, content in sorted(files.items()):
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            print(f"wrote {rel}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if outputs are stale")
    args = parser.parse_args(argv)
    files = outputs()
    if args.check:
        return check(files)
    write(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
