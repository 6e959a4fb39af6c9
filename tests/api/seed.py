"""Access to the documentation's seed manifests for the API tests.

The manifests live outside the repository (``../shared/seed/manifests``) and are
never copied in. When the folder is missing, tests that need it skip, except
under ``CI=true``, where a missing folder fails the run.

Guarantees: ``documents()`` lists every modelplane.ai/v1alpha1 document with its
source, and ``uncommented_variants()`` every seed document with one commented-out
optional block (clusterSelector, identitySecretRef) switched on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "manifests"
API_VERSION = "modelplane.ai/v1alpha1"
OPTIONAL_BLOCKS = ("clusterSelector", "identitySecretRef")


def require_seed() -> Path:
    """The seed folder; skips (fails under CI=true) when it is missing."""
    if SEED.is_dir():
        return SEED
    if os.environ.get("CI") == "true":
        pytest.fail(f"seed manifests missing at {SEED}")
    pytest.skip(f"seed manifests missing at {SEED}")


@dataclass(frozen=True)
class SeedDoc:
    name: str
    raw: dict[str, Any]


def _files() -> list[Path]:
    if not SEED.is_dir():
        return []
    return sorted(p for p in SEED.rglob("*") if p.suffix in (".yaml", ".yml"))


def _ours(text: str, label: str) -> list[SeedDoc]:
    out = []
    for i, raw in enumerate(yaml.safe_load_all(text)):
        if isinstance(raw, dict) and raw.get("apiVersion") == API_VERSION:
            out.append(SeedDoc(f"{label}#{i} {raw['kind']}", raw))
    return out


def documents() -> list[SeedDoc]:
    """Every modelplane.ai/v1alpha1 document of the seed manifests."""
    docs: list[SeedDoc] = []
    for path in _files():
        docs += _ours(path.read_text(), str(path.relative_to(SEED)))
    return docs


def uncomment(text: str, key: str) -> str | None:
    """``text`` with the commented-out block starting at ``# key:`` switched on."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(rf"^\s*#\s*{key}:\s*$", ln)), None)
    if start is None:
        return None
    hash_col = lines[start].index("#")
    body_col = len(lines[start]) - len(lines[start][hash_col + 1 :].lstrip())
    out = [*lines[:start], lines[start][:hash_col] + lines[start][body_col:]]
    i = start + 1
    while i < len(lines):
        ln = lines[i]
        m = re.match(r"^(\s*)#(\s+)(\S.*)$", ln)
        if not m or len(m.group(1)) != hash_col or len(m.group(1) + "#" + m.group(2)) <= body_col:
            break
        out.append(ln[:hash_col] + ln[hash_col + 2 :])
        i += 1
    return "\n".join(out + lines[i:]) + "\n"


def uncommented_variants() -> list[SeedDoc]:
    """Seed documents with one commented-out optional block switched on."""
    docs: list[SeedDoc] = []
    for path in _files():
        text = path.read_text()
        for key in OPTIONAL_BLOCKS:
            variant = uncomment(text, key)
            if variant is not None:
                label = f"{path.relative_to(SEED)} with {key}"
                docs += _ours(variant, label)
    return docs
