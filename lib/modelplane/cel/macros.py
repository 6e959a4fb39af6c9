"""Compilation of CEL's macros: comprehensions, ``cel.bind``, ``sortBy``, ``optMap``.

``MacroCompiler`` is a part of the selector compiler (``compiler._Compiler``
derives from it): it checks a macro call's variables and bodies in a scope
that declares the iteration variables, and returns the ``Node`` whose
function runs the loop (``comprehensions``), charging cel-go's cost when the
compiler meters the expression.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from modelplane.cel.comprehensions import exists_one, filter_map, quantifier, two_variable
from modelplane.cel.cost import METER, call_cost
from modelplane.cel.lists_ext import sort_values
from modelplane.cel.model import SelectorError
from modelplane.cel.node import Frame, Node
from modelplane.cel.types import BOOL, DYN, INT, Type, list_of, map_of, optional_of
from modelplane.cel.values import EvalError, Opt, kind_name, no_overload

__all__ = ["MacroCompiler"]


class MacroCompiler:
    """The macro half of the compiler; the other half supplies ``node`` and friends."""

    scope: dict[str, Type]
    tracked: bool
    sized: bool

    def node(self, tree: Tree[Token]) -> Node:
        raise NotImplementedError

    def _ident_name(self, tree: Tree[Token]) -> str | None:
        raise NotImplementedError

    def _expect_bool(self, found: Type, operator: str) -> None:
        raise NotImplementedError

    def _opt_map(self, name: str, target: Node, args: list[Tree[Token]]) -> Node:
        var = self._ident_name(args[0])
        if var is None:
            raise SelectorError(f"{name}() variable name must be a simple identifier")
        if target.type.name != "optional_type" and not target.type.unknown:
            raise SelectorError(
                f"found no matching overload for '{name}' applied to '({target.type})'"
            )
        saved = self.scope.get(var)
        self.scope[var] = target.type.params[0] if target.type.params else DYN
        try:
            body = self.node(args[1])
        finally:
            self._restore(var, saved)
        flat = name == "optFlatMap"
        if flat and body.type.name != "optional_type" and not body.type.unknown:
            raise SelectorError(f"optFlatMap() body must be optional, not {body.type}")
        result = body.type if flat else optional_of(body.type)
        source, run = target.run, body.run

        def apply(frame: Frame) -> Any:
            opt = source(frame)
            if not isinstance(opt, Opt):
                raise no_overload(name, opt)
            if not opt.present:
                return opt
            inner = dict(frame)
            inner[var] = opt.value
            value = run(inner)
            return value if flat else Opt(value)

        return Node(result, apply)

    def _bind(self, args: list[Tree[Token]]) -> Node:
        name = self._ident_name(args[0]) if len(args) == 3 else None
        if name is None:
            raise SelectorError("cel.bind() variable name must be a simple identifier")
        init = self.node(args[1])
        saved = self.scope.get(name)
        self.scope[name] = init.type
        try:
            body = self.node(args[2])
        finally:
            self._restore(name, saved)
        init_run, body_run = init.run, body.run

        def run(frame: Frame) -> Any:
            inner = dict(frame)
            inner[name] = init_run(frame)
            return body_run(inner)

        return Node(body.type, run)

    def _restore(self, name: str, saved: Type | None) -> None:
        if saved is None:
            del self.scope[name]
        else:
            self.scope[name] = saved

    def _two_variable(self, name: str, target: Node, args: list[Tree[Token]]) -> Node:
        first, second = (self._ident_name(a) for a in args[:2])
        expected = (4, 5) if name in ("transformList", "transformMap") else (3, 4)
        limit = 3 if name in ("all", "exists", "existsOne", "transformMapEntry") else 4
        if first is None or second is None or len(args) not in range(3, limit + 1):
            raise SelectorError(f"wrong number of arguments to {name}() macro")
        del expected
        container = target.type
        if container.name == "list":
            key_type, value_type = INT, container.params[0]
        elif container.name == "map":
            key_type, value_type = container.params
        elif container.unknown:
            key_type, value_type = DYN, DYN
        else:
            raise SelectorError(
                f"expression of type '{container}' cannot be the range of a comprehension"
            )
        saved = [(n, self.scope.get(n)) for n in (first, second)]
        self.scope[first], self.scope[second] = key_type, value_type
        try:
            bodies = [self.node(t) for t in args[2:]]
        finally:
            for n, old in reversed(saved):
                self._restore(n, old)
        if name in ("all", "exists", "existsOne") or len(bodies) == 2:
            self._expect_bool(bodies[0].type, name)
        self.sized = True
        source = target.run
        run = two_variable(
            name,
            lambda frame: source(frame),
            (first, second),
            [b.run for b in bodies],
            self.tracked,
        )
        last = bodies[-1].type
        if name in ("all", "exists", "existsOne"):
            result = BOOL
        elif name == "transformList":
            result = list_of(last)
        elif name == "transformMap":
            result = map_of(key_type, last)
        else:
            result = last if last.name == "map" else map_of(DYN, DYN)
        return Node(result, run)

    def _sort_by(self, target: Node, args: list[Tree[Token]]) -> Node:
        keys = self._macro("map", target, args)
        source, key_run = target.run, keys.run
        tracked = self.tracked

        def run(frame: Frame) -> tuple[Any, ...]:
            values = tuple(source(frame))
            order = tuple(key_run(frame))
            if tracked:
                frame[METER][0] += call_cost("sort", [order], None)
            ranked = sort_values(order)
            return tuple(values[i] for i in ranked)

        return Node(target.type, run)

    def _macro(self, name: str, target: Node, args: list[Tree[Token]]) -> Node:
        var = self._ident_name(args[0])
        assert var is not None
        expected = 3 if name == "map" else 2
        if len(args) not in (expected, 2 if name == "map" else expected):
            raise SelectorError(f"wrong number of arguments to {name}() macro")
        if target.type.name in ("list", "map"):
            elem = target.type.params[0]
        elif target.type.unknown:
            elem = DYN
        else:
            raise SelectorError(
                f"expression of type '{target.type}' cannot be the range of a comprehension"
            )
        saved = self.scope.get(var)
        self.scope[var] = elem
        try:
            bodies = [self.node(t) for t in args[1:]]
        finally:
            self._restore(var, saved)
        source = target.run

        def items(frame: Frame) -> list[Any]:
            value = source(frame)
            if isinstance(value, tuple | list | dict):
                return list(value)
            raise EvalError(f"expression of type '{kind_name(value)}' cannot be iterated")

        if name in ("all", "exists", "exists_one") or (name == "filter"):
            self._expect_bool(bodies[0].type, name)
        if name == "map" and len(bodies) == 2:
            self._expect_bool(bodies[0].type, name)
        runs = [b.run for b in bodies]
        self.sized = True
        tracked = self.tracked
        if name == "all":
            return Node(BOOL, quantifier(items, var, runs[0], False, tracked))
        if name == "exists":
            return Node(BOOL, quantifier(items, var, runs[0], True, tracked))
        if name == "exists_one":
            return Node(BOOL, exists_one(items, var, runs[0], tracked))
        if name == "filter":
            return Node(list_of(elem), filter_map(items, var, runs[0], None, tracked))
        if len(runs) == 1:
            return Node(list_of(bodies[0].type), filter_map(items, var, None, runs[0], tracked))
        return Node(list_of(bodies[1].type), filter_map(items, var, runs[0], runs[1], tracked))
