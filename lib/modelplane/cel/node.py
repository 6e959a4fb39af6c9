"""The compiled form of a CEL expression: a ``Node`` per sub-expression.

A ``Node`` is the sub-expression's static type plus a function from a
variable frame (a dict of variable name to value) to its value.  Also the
two helpers for walking cel-python's parse tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from modelplane.cel.types import Type

__all__ = ["Eval", "Frame", "Node", "_data", "_trees"]

Frame = dict[str, Any]
Eval = Callable[[Frame], Any]


@dataclass(frozen=True, slots=True)
class Node:
    type: Type
    run: Eval
    constant: bool = False  # a literal, or folded from literals
    attribute: bool = False  # an identifier or a selection/index chain rooted at one


def _trees(children: Sequence[Any]) -> list[Tree[Token]]:
    return [c for c in children if isinstance(c, Tree)]


def _data(tree: Tree[Token]) -> str:
    return str(tree.data)
