"""Parsing and compiling a CEL expression for a given set of declared variables.

``compile_expression(text, variables)`` parses with ``modelplane.cel.parser``, then
type-checks and compiles with ``modelplane.cel.compiler``.  The DRA selector
environment (``device``) is the default; a CRD validation rule declares
``self`` as ``dyn``.  CEL's optional syntax (``.?``, ``[?]``) is first
rewritten into internal calls (``modelplane.cel.optional``).  Every failure
is a ``SelectorError`` with a one-line message; nothing is cached here
(callers cache per expression).
"""

from __future__ import annotations

from collections.abc import Mapping

from modelplane.cel.compiler import DRA_VARIABLES, Node, compile_tree
from modelplane.cel.model import SelectorError
from modelplane.cel.optional import ReservedNameError, rewrite
from modelplane.cel.parser import ParseError, parse
from modelplane.cel.types import Type

__all__ = ["compile_expression"]


def _one_line(message: str) -> str:
    return " ".join(message.split())


def compile_expression(
    expression: str, variables: Mapping[str, Type] = DRA_VARIABLES, *, metered: bool = True
) -> Node:
    """Parse and check ``expression``; raise ``SelectorError`` if it does not compile.

    ``metered=False`` leaves out the DRA cost limit (see ``compile_tree``)."""
    try:
        text = rewrite(expression) if "?" in expression or "__opt_" in expression else expression
    except ReservedNameError as e:
        raise SelectorError(str(e)) from None
    try:
        tree = parse(text)
    except ParseError as e:
        raise SelectorError(_one_line(str(e))) from None
    except RecursionError:
        raise SelectorError("expression is nested too deeply") from None
    try:
        return compile_tree(tree, variables, metered=metered)
    except SelectorError as e:
        raise SelectorError(_one_line(str(e))) from None
    except RecursionError:
        raise SelectorError("expression is nested too deeply") from None
