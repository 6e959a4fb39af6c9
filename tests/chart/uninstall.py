"""The chart's pre-delete hook script (charts/modelplane/files/uninstall.py), imported by path."""

from __future__ import annotations

import functools
import importlib.util
import sys
from types import ModuleType

from tests.chart.helm import CHART


@functools.cache
def uninstall_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "modelplane_chart_uninstall", CHART / "files" / "uninstall.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations
    spec.loader.exec_module(module)
    return module
