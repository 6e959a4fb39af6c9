"""Builds the CEL parser's Lark LALR tables, with the tables cached on disk (file I/O).

``modelplane.cel.parser`` (pure) asks ``lalr_parser`` once per process. The grammar is
cel-python's ``celpy/cel.lark``, read as a file without importing ``celpy``; the tables
are kept in ``$XDG_CACHE_HOME/modelplane`` (or ``~/.cache/modelplane``) in a file whose
name carries a digest of the grammar, the options, Lark's version and Python's, and
Lark rebuilds them from the grammar when that file is missing, stale or unwritable.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lark import Lark
from lark import __version__ as lark_version


def grammar() -> str:
    spec = importlib.util.find_spec("celpy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("cel-python (the celpy package) is not installed: it holds the grammar")
    return (Path(next(iter(spec.submodule_search_locations))) / "cel.lark").read_text()


def cache_file(text: str, options: Mapping[str, object]) -> Path:
    key = repr((text, sorted(options.items()), lark_version, sys.version_info[:2]))
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelplane" / f"cel-parser-{digest}.lark"


def lalr_parser(options: Mapping[str, object], callbacks: Mapping[str, Callable[..., Any]]) -> Lark:
    """The Lark parser of CEL's grammar with `options`, its tables from the disk cache."""
    text = grammar()
    path = cache_file(text, options)
    with contextlib.suppress(OSError):  # then Lark quietly fails to write the cache
        path.parent.mkdir(parents=True, exist_ok=True)
    return Lark(text, lexer_callbacks=dict(callbacks), cache=str(path), **options)
