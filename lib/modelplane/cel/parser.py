"""The CEL parser: cel-python's grammar (``celpy/cel.lark``) under Lark's LALR parser.

``parse(text)`` returns the Lark tree that ``modelplane.cel.compiler`` compiles, or
raises ``ParseError`` with a one-line message naming the line and column.

The parser is built on the first ``parse``, not at import: building Lark's LALR
tables from the grammar costs a few hundred milliseconds, so the tables are kept
in the user's cache directory (``$XDG_CACHE_HOME/modelplane`` or
``~/.cache/modelplane``), in a file whose name carries a digest of the grammar,
Lark's version and Python's, and reloaded from there by later processes (Lark's
own ``cache``: it checks the grammar's digest in the file and rebuilds from the
grammar when the file is missing, stale, unreadable or cannot be written).  Only
the grammar file is read from the cel-python package: importing ``celpy`` itself
(which pulls in its evaluator, ``pendulum`` and ``dateutil``) is not needed to parse.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import sys
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark import __version__ as lark_version
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

__all__ = ["ParseError", "parse"]

_OPTIONS: dict[str, object] = {
    "parser": "lalr",
    "start": "expr",
    "g_regex_flags": re.M,
    "propagate_positions": True,
    "maybe_placeholders": False,
    "priority": "invert",
}


class ParseError(ValueError):
    """The text is not a CEL expression; the message is one line."""


def _literal_keywords(token: Token) -> Token:
    """``true`` and ``false`` lex as identifiers; CEL makes them bool literals."""
    if token.value in ("true", "false"):
        return Token("BOOL_LIT", token.value)
    return token


def _grammar() -> str:
    spec = importlib.util.find_spec("celpy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("cel-python (the celpy package) is not installed: it holds the grammar")
    return (Path(next(iter(spec.submodule_search_locations))) / "cel.lark").read_text()


def _cache_file(grammar: str) -> Path:
    key = repr((grammar, sorted(_OPTIONS.items()), lark_version, sys.version_info[:2]))
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelplane" / f"cel-parser-{digest}.lark"


@cache
def _parser() -> Lark:
    grammar = _grammar()
    path = _cache_file(grammar)
    with contextlib.suppress(OSError):  # then Lark quietly fails to write the cache
        path.parent.mkdir(parents=True, exist_ok=True)
    return Lark(
        grammar,
        lexer_callbacks={"IDENT": _literal_keywords},
        cache=str(path),
        **_OPTIONS,
    )


def _describe(error: LarkError) -> str:
    if isinstance(error, UnexpectedEOF):
        return "unexpected end of expression"
    if isinstance(error, UnexpectedToken):
        if error.token.type == "$END":
            return "unexpected end of expression"
        return f"line {error.line}, column {error.column}: unexpected {error.token.value!r}"
    if isinstance(error, UnexpectedCharacters):
        return f"line {error.line}, column {error.column}: unexpected character {error.char!r}"
    return str(error).strip().splitlines()[0] if str(error).strip() else "invalid expression"


def parse(text: str) -> Tree[Token]:
    """The parse tree of one CEL expression; raises ``ParseError``."""
    try:
        return _parser().parse(text)
    except LarkError as e:
        raise ParseError(f"syntax error: {_describe(e)}") from None
