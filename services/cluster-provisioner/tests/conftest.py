"""Lets these tests use the repository's shared test doubles (`tests.fakekube`) when they run
on their own, not only after the top-level `tests` package put the repository on the path."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
