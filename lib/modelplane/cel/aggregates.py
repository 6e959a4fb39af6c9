"""Compilation of literals: scalars, lists and maps, with optional entries.

``AggregateCompiler`` is a part of the selector compiler (``compiler._Compiler``
derives from it).  List and map literals must be homogeneous, as cel-go
requires, except inside a ``format`` call, where a mix is typed ``dyn``;
literals made only of constants are built once at compile time (cel-go folds
them, so they cost nothing); ``[?e]`` and ``{?k: v}`` entries (rewritten by
``optional.rewrite``) are included only when present.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from modelplane.cel.cost import METER
from modelplane.cel.literals import decode_bytes, decode_string
from modelplane.cel.model import SelectorError
from modelplane.cel.node import Frame, Node, _data, _trees
from modelplane.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    INT,
    NULL,
    STRING,
    UINT,
    Type,
    list_of,
    map_of,
)
from modelplane.cel.values import INT64_MAX, INT64_MIN, UINT64_MAX, Opt, UInt, no_overload

__all__ = ["AggregateCompiler"]


class AggregateCompiler:
    """The literal half of the compiler; the other half supplies ``node`` and friends."""

    in_format = 0
    """How many ``format`` calls enclose the literal being compiled."""

    def node(self, tree: Tree[Token]) -> Node:
        raise NotImplementedError

    def _args(self, tree: Tree[Token] | None) -> list[Tree[Token]]:
        raise NotImplementedError

    def _charged(self, node: Node, cost: int) -> Node:
        raise NotImplementedError

    def _list_lit(self, tree: Tree[Token]) -> Node:
        trees = self._args(next(iter(_trees(tree.children)), None))
        elems: list[Node] = []
        optional: list[bool] = []
        for t in trees:
            inner = self._internal_arg(t, "__opt_elem__")
            node = self.node(inner if inner is not None else t)
            if inner is not None:
                node = self._unwrap_optional(node, "list element")
            elems.append(node)
            optional.append(inner is not None)
        # optional.none() has a free type parameter: it joins any element type.
        typed = [e.type for e, o in zip(elems, optional, strict=True) if not (o and e.type == DYN)]
        elem_type = self._homogeneous(typed)
        runs = [e.run for e in elems]
        if not any(optional):
            if all(e.constant for e in elems):
                value = tuple(r({METER: [0]}) for r in runs)
                return Node(list_of(elem_type), lambda frame: value, constant=True)
            node = Node(list_of(elem_type), lambda frame: tuple(r(frame) for r in runs))
            return self._charged(node, 10)
        flags = list(zip(runs, optional, strict=True))

        def build(frame: Frame) -> tuple[Any, ...]:
            out: list[Any] = []
            for run, opt in flags:
                value = run(frame)
                if opt:
                    if value.present:
                        out.append(value.value)
                else:
                    out.append(value)
            return tuple(out)

        return self._charged(Node(list_of(elem_type), build), 10)

    def _internal_arg(self, tree: Tree[Token], name: str) -> Tree[Token] | None:
        """The argument of a rewritten ``name(arg)`` call, or None for anything else."""
        found: Any = tree
        while isinstance(found, Tree) and _data(found) != "ident_arg":
            kids = _trees(found.children)
            if len(kids) != 1 or len(found.children) != 1:
                return None
            found = kids[0]
        if not isinstance(found, Tree) or str(found.children[0]) != name:
            return None
        args = self._args(next(iter(_trees(found.children)), None))
        return args[0] if len(args) == 1 else None

    def _unwrap_optional(self, node: Node, what: str) -> Node:
        """An optional-typed node, typed by its value; checked to hold an ``Opt`` at runtime."""
        if node.type.name != "optional_type" and not node.type.unknown:
            raise SelectorError(f"optional {what} must be optional, not {node.type}")
        run = node.run

        def check(frame: Frame) -> Any:
            value = run(frame)
            if not isinstance(value, Opt):
                raise no_overload("optional", value)
            return value

        elem = node.type.params[0] if node.type.params else DYN
        return Node(elem, check)

    def _homogeneous(self, types: list[Type]) -> Type:
        """The one element type; ``dyn`` for a mix inside a ``format`` call (cel-go exempts it)."""
        if not types:
            return DYN
        first = types[0]
        for other in types[1:]:
            if other != first:
                if self.in_format:
                    return DYN
                raise SelectorError(f"expected type '{first}' but found '{other}'")
        return first

    def _map_lit(self, tree: Tree[Token]) -> Node:
        inits = self._args(next(iter(_trees(tree.children)), None))
        nodes: list[Node] = []
        optional: list[bool] = []
        for i, t in enumerate(inits):
            inner = self._internal_arg(t, "__opt_key__") if i % 2 == 0 else None
            nodes.append(self.node(inner if inner is not None else t))
            if i % 2 == 1 and optional[-1]:
                nodes[-1] = self._unwrap_optional(nodes[-1], "map value")
            if i % 2 == 0:
                optional.append(inner is not None)
        keys, values = nodes[0::2], nodes[1::2]
        key_type = self._homogeneous([k.type for k in keys])
        value_type = self._homogeneous(
            [v.type for v, o in zip(values, optional, strict=True) if not (o and v.type == DYN)]
        )
        if key_type not in (STRING, INT, UINT, BOOL) and not key_type.unknown:
            raise SelectorError(f"unsupported map key type '{key_type}'")
        pairs = [(k.run, v.run, o) for k, v, o in zip(keys, values, optional, strict=True)]

        def build(frame: Frame) -> dict[Any, Any]:
            result: dict[Any, Any] = {}
            for k, v, opt in pairs:
                key = k(frame)
                if isinstance(key, UInt):
                    key = key.value
                # cel-go keeps the last value of a repeated key, without an error.
                result.pop(key, None)
                value = v(frame)
                if opt:
                    if not value.present:
                        continue
                    value = value.value
                result[key] = value
            return result

        if not any(optional) and all(n.constant for n in nodes):
            value = build({METER: [0]})
            return Node(map_of(key_type, value_type), lambda frame: value, constant=True)
        return self._charged(Node(map_of(key_type, value_type), build), 30)

    def _literal(self, tree: Tree[Token]) -> Node:
        token = tree.children[0]
        assert isinstance(token, Token)
        text = str(token)
        value: Any
        try:
            if token.type == "INT_LIT":
                value = int(text, 0) if "x" in text.lower() else int(text)
                if not INT64_MIN <= value <= INT64_MAX:
                    raise SelectorError(f"integer literal {text} is out of range")
                kind = INT
            elif token.type == "UINT_LIT":
                digits = text[:-1]
                number = int(digits, 0) if "x" in digits.lower() else int(digits)
                if not 0 <= number <= UINT64_MAX:
                    raise SelectorError(f"unsigned integer literal {text} is out of range")
                value, kind = UInt(number), UINT
            elif token.type == "FLOAT_LIT":
                value, kind = float(text), DOUBLE
            elif token.type in ("STRING_LIT", "MLSTRING_LIT"):
                value, kind = decode_string(text), STRING
            elif token.type == "BYTES_LIT":
                value, kind = decode_bytes(text), BYTES
            elif token.type == "BOOL_LIT":
                value, kind = text == "true", BOOL
            else:
                value, kind = None, NULL
        except ValueError as e:
            raise SelectorError(str(e)) from None
        return Node(kind, lambda frame: value, constant=True)
