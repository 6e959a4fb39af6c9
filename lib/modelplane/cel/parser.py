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
That file work lives in ``modelplane.celtables``, outside this pure package.
"""

from __future__ import annotations

import re
from functools import cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from modelplane import celtables

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


@cache
def _parser() -> Lark:
    return celtables.lalr_parser(_OPTIONS, {"IDENT": _literal_keywords})


def parse(text: str) -> Tree[Token]:
    """The parse tree of one CEL expression; raises ``ParseError``."""
    try:
        return _parser().parse(text)
    except LarkError as e:
        raise ParseError(f"syntax error: {_describe(e)}") from None
