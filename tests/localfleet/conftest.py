"""Fixtures of the local fleet's unit tests: `needs_go` (Go on PATH; required under CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture
def needs_go() -> None:
    """Skip a test that runs Go where Go is missing, but fail it in CI."""
    if shutil.which("go") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Go is required in CI to build the local fleet's binaries")
        pytest.skip("Go is not installed")
