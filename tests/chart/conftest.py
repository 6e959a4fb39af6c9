"""Fixtures of the chart tests: the helm binary and the chart rendered with defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import helm_binary, render


@pytest.fixture(scope="session")
def helm() -> Path:
    return helm_binary()


@pytest.fixture(scope="session")
def rendered(helm: Path) -> list[dict[str, Any]]:
    return render(helm)
