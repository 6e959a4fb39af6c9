"""The repository root on the import path, so these tests share `tests.enginesim.sim`
(the engine simulator's process helper) instead of keeping a copy of it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
