"""Type-check a parsed CEL expression and turn it into a Python closure.

Input is cel-python's parse tree (``celpy.celparser``) and the declared
variables with their static types (by default the DRA environment's
``device``; a CRD validation rule declares ``self`` as ``dyn``); output is a
``Node``: the expression's static type plus a function from a variable frame
to the value.  Checking rejects what cel-go's checker rejects in the common cases
(undeclared variables, fields and functions, calls with no matching overload,
mistyped operators, non-homogeneous literals, invalid regex literals) and
raises ``SelectorError``.  Evaluation raises ``EvalError`` for runtime errors
and follows CEL's commutative error semantics for ``&&``, ``||`` and the
``all``/``exists`` macros.  No I/O; safe to share compiled nodes across threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from modelplane.cel.access import contains, lookup, opt_lookup, opt_select, select
from modelplane.cel.comprehensions import exists_one, filter_map, quantifier, two_variable
from modelplane.cel.cost import COST_LIMIT, METER, SIZED, call_cost, limit_exceeded
from modelplane.cel.lists_ext import sort_values
from modelplane.cel.literals import decode_bytes, decode_string
from modelplane.cel.model import SelectorError
from modelplane.cel.overloads import Function, dispatch
from modelplane.cel.regex import compile_regex
from modelplane.cel.registry import FUNCTIONS
from modelplane.cel.types import (
    ANY,
    BOOL,
    BYTES,
    DEVICE,
    DOUBLE,
    DYN,
    INT,
    NULL,
    QUANTITY,
    STRING,
    UINT,
    Type,
    assignable,
    list_of,
    map_of,
    optional_of,
    type_of,
)
from modelplane.cel.values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    CelType,
    DomainMap,
    EvalError,
    Opt,
    UInt,
    equal,
    kind_name,
    no_overload,
)

__all__ = ["DRA_VARIABLES", "Frame", "Node", "compile_tree"]

Frame = dict[str, Any]
Eval = Callable[[Frame], Any]

ATTRIBUTES = map_of(STRING, map_of(STRING, ANY))
CAPACITY = map_of(STRING, map_of(STRING, QUANTITY))
DEVICE_FIELDS: dict[str, Type] = {
    "driver": STRING,
    "attributes": ATTRIBUTES,
    "capacity": CAPACITY,
    "allowMultipleAllocations": BOOL,
}
DRA_VARIABLES: Mapping[str, Type] = {"device": DEVICE}
"""The variables of the DRA device-selector environment."""
TYPE_NAMES = frozenset(
    {
        "bool",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "list",
        "map",
        "null_type",
        "type",
        "optional_type",
        "net.IP",
        "net.IPPrefix",
    }
)
"""Type identifiers usable as values (``type(x) == int``)."""
_TWO_VARIABLE = frozenset({"all", "exists"})
_TWO_VARIABLE_ONLY = frozenset({"existsOne", "transformList", "transformMap", "transformMapEntry"})
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_OPERATORS = {
    "relation_lt": "_<_",
    "relation_le": "_<=_",
    "relation_gt": "_>_",
    "relation_ge": "_>=_",
    "addition_add": "_+_",
    "addition_sub": "_-_",
    "multiplication_mul": "_*_",
    "multiplication_div": "_/_",
    "multiplication_mod": "_%_",
}


@dataclass(frozen=True, slots=True)
class Node:
    type: Type
    run: Eval
    constant: bool = False  # a literal, or folded from literals
    attribute: bool = False  # an identifier or a selection/index chain rooted at one


# Type conversions of constants are evaluated when the program is planned.
_FOLDED = frozenset({"int", "uint", "double", "string"})


def _trees(children: Sequence[Any]) -> list[Tree[Token]]:
    return [c for c in children if isinstance(c, Tree)]


def _data(tree: Tree[Token]) -> str:
    return str(tree.data)


class _Compiler:
    def __init__(self, variables: Mapping[str, Type], tracked: bool = False) -> None:
        self.scope: dict[str, Type] = dict(variables)
        self.tracked = tracked  # charge cel-go's runtime cost to the frame's meter
        self.sized = False  # uses a macro or a call whose cost grows with its arguments

    def _charged(self, node: Node, cost: int) -> Node:
        """``node`` charging a fixed ``cost`` after it evaluates (when tracked)."""
        if not self.tracked or cost == 0:
            return node
        run = node.run

        def charged(frame: Frame) -> Any:
            value = run(frame)
            frame[METER][0] += cost
            return value

        return Node(node.type, charged, node.constant, node.attribute)

    def _qualified(self, operand: Node, node: Node) -> Node:
        """A selection or index: 1, or 2 when it starts a chain on a computed value."""
        charged = self._charged(node, 1 if operand.attribute else 2)
        return Node(charged.type, charged.run, charged.constant, attribute=True)

    def _call_node(
        self, name: str, result: Type, impl: Callable[..., Any], args: list[Node]
    ) -> Node:
        """A call of ``impl`` on the arguments' values, charging ``call_cost`` when tracked."""
        runs = [a.run for a in args]
        if self.tracked:

            def metered(frame: Frame) -> Any:
                values = [r(frame) for r in runs]
                value = impl(*values)
                frame[METER][0] += call_cost(name, values, value)
                return value

            return Node(result, metered)
        if len(runs) == 1:
            (one,) = runs
            return Node(result, lambda frame: impl(one(frame)))
        if len(runs) == 2:
            first, second = runs
            return Node(result, lambda frame: impl(first(frame), second(frame)))
        return Node(result, lambda frame: impl(*(r(frame) for r in runs)))

    # ----- dispatch -------------------------------------------------------
    def node(self, tree: Tree[Token]) -> Node:
        kind = _data(tree)
        kids = tree.children
        trees = _trees(kids)
        if kind in ("expr", "conditionalor", "conditionaland", "relation") and len(trees) == 1:
            return self.node(trees[0])
        wrappers = ("addition", "multiplication", "unary", "member", "primary", "paren_expr")
        if kind in wrappers and len(trees) == 1 and _data(trees[0]) not in _OPERATORS:
            return self.node(trees[0])
        handler = getattr(self, "_" + kind, None)
        if handler is None:
            raise SelectorError(f"unsupported syntax: {kind}")
        result: Node = handler(tree)
        return result

    # ----- logic ------------------------------------------------------------
    def _expr(self, tree: Tree[Token]) -> Node:
        cond, then, other = (self.node(t) for t in _trees(tree.children))
        self._expect_bool(cond.type, "_?_:_")
        if then.type == other.type or other.type.unknown:
            result = then.type
        elif then.type.unknown:
            result = other.type
        elif NULL in (then.type, other.type):
            result = DYN
        else:
            raise SelectorError(
                "found no matching overload for '_?_:_' applied to "
                f"'(bool, {then.type}, {other.type})'"
            )
        test, left, right = cond.run, then.run, other.run

        def run(frame: Frame) -> Any:
            value = test(frame)
            if value is True:
                return left(frame)
            if value is False:
                return right(frame)
            raise no_overload("_?_:_", value)

        return Node(result, run)

    def _expect_bool(self, found: Type, operator: str) -> None:
        if found != BOOL and not found.unknown:
            raise SelectorError(f"found no matching overload for '{operator}' applied to '{found}'")

    def _conditionalor(self, tree: Tree[Token]) -> Node:
        return self._logic(tree, "_||_", True)

    def _conditionaland(self, tree: Tree[Token]) -> Node:
        return self._logic(tree, "_&&_", False)

    def _logic(self, tree: Tree[Token], name: str, short: bool) -> Node:
        left, right = (self.node(t) for t in _trees(tree.children))
        for side in (left, right):
            if side.type != BOOL and not side.type.unknown:
                raise SelectorError(
                    f"found no matching overload for '{name}' applied to "
                    f"'({left.type}, {right.type})'"
                )
        lhs, rhs = left.run, right.run

        def run(frame: Frame) -> Any:
            error: EvalError | None = None
            try:
                first = lhs(frame)
                if first is short:
                    return short
                if type(first) is not bool:
                    error = no_overload(name, first)
            except EvalError as e:
                error = e
            second = rhs(frame)
            if second is short:
                return short
            if type(second) is not bool:
                raise no_overload(name, second)
            if error is not None:
                raise error
            return not short

        return Node(BOOL, run)

    # ----- relations and arithmetic --------------------------------------
    def _relation(self, tree: Tree[Token]) -> Node:
        op_tree, right_tree = _trees(tree.children)
        op = _data(op_tree)
        left = self.node(_trees(op_tree.children)[0])
        right = self.node(right_tree)
        if op in ("relation_eq", "relation_ne"):
            return self._equality(left, right, op == "relation_ne")
        if op == "relation_in":
            return self._in(left, right)
        return self._call(FUNCTIONS[_OPERATORS[op]], [left, right], member=False)

    def _equality(self, left: Node, right: Node, negate: bool) -> Node:
        if not self._comparable(left.type, right.type):
            name = "_!=_" if negate else "_==_"
            raise SelectorError(
                f"found no matching overload for '{name}' applied to '({left.type}, {right.type})'"
            )
        if self.tracked:
            test = _not_equal if negate else equal
            return self._call_node("_!=_" if negate else "_==_", BOOL, test, [left, right])
        lhs, rhs = left.run, right.run
        if negate:
            return Node(BOOL, lambda frame: not equal(lhs(frame), rhs(frame)))
        return Node(BOOL, lambda frame: equal(lhs(frame), rhs(frame)))

    def _comparable(self, a: Type, b: Type) -> bool:
        if a.unknown or b.unknown or NULL in (a, b):
            return True
        if a.name == b.name == "type":
            return True
        if a.name != b.name or len(a.params) != len(b.params):
            return False
        return all(self._comparable(x, y) for x, y in zip(a.params, b.params, strict=True))

    def _in(self, left: Node, right: Node) -> Node:
        container = right.type
        if container.name in ("list", "map"):
            if not self._comparable(container.params[0], left.type):
                raise SelectorError(
                    f"found no matching overload for '@in' applied to '({left.type}, {container})'"
                )
        elif not container.unknown:
            raise SelectorError(
                f"found no matching overload for '@in' applied to '({left.type}, {container})'"
            )
        if self.tracked and not (right.constant and container.name == "list"):
            return self._call_node("@in", BOOL, _member_of, [left, right])
        lhs, rhs = left.run, right.run
        return Node(BOOL, lambda frame: contains(rhs(frame), lhs(frame)))

    def _addition(self, tree: Tree[Token]) -> Node:
        return self._binary(tree)

    def _multiplication(self, tree: Tree[Token]) -> Node:
        return self._binary(tree)

    def _binary(self, tree: Tree[Token]) -> Node:
        op_tree, right_tree = _trees(tree.children)
        left = self.node(_trees(op_tree.children)[0])
        right = self.node(right_tree)
        node = self._call(FUNCTIONS[_OPERATORS[_data(op_tree)]], [left, right], member=False)
        if node.type.name == "list":
            known = left.type if left.type.params[0:1] != (DYN,) else right.type
            return Node(known if known.name == "list" else node.type, node.run)
        return node

    def _unary(self, tree: Tree[Token]) -> Node:
        op_tree, operand_tree = _trees(tree.children)
        operand = self.node(operand_tree)
        name = "!_" if _data(op_tree) == "unary_not" else "-_"
        return self._call(FUNCTIONS[name], [operand], member=False)

    # ----- calls ------------------------------------------------------------
    def _call(self, function: Function, args: list[Node], member: bool) -> Node:
        types = [a.type for a in args]
        candidates = [
            o
            for o in function.overloads
            if o.member == member
            and len(o.params) == len(types)
            and all(assignable(p, t) for p, t in zip(o.params, types, strict=True))
            and (o.check is None or o.check(types))
        ]
        results = [o.result_type(types) for o in candidates]
        if not results:
            if not any(o.member == member for o in function.overloads):
                raise SelectorError(f"undeclared reference to '{function.name}'")
            shown = ", ".join(str(t) for t in types)
            raise SelectorError(
                f"found no matching overload for '{function.name}' applied to '({shown})'"
            )
        result = results[0] if all(r == results[0] for r in results) else DYN
        impl = dispatch(function.name, candidates)
        if function.name in _FOLDED and all(a.constant for a in args):
            return self._fold(result, impl, args)
        if function.name in SIZED:
            self.sized = True
        return self._call_node(function.name, result, impl, args)

    def _fold(self, result: Type, impl: Callable[..., Any], args: list[Node]) -> Node:
        """Evaluate a conversion of constants now, as cel-go's planner does."""
        try:
            value = impl(*(a.run({METER: [0]}) for a in args))
        except EvalError as e:
            raise SelectorError(f"program instantiation failed: {e}") from None
        return Node(result, lambda frame: value, constant=True)

    def _args(self, tree: Tree[Token] | None) -> list[Tree[Token]]:
        return [] if tree is None else _trees(tree.children)

    def _ident_arg(self, tree: Tree[Token]) -> Node:
        name = str(tree.children[0])
        arg_trees = self._args(next(iter(_trees(tree.children)), None))
        if name == "has":
            return self._has(arg_trees)
        if name in ("type", "dyn") and len(arg_trees) == 1:
            return self._type_or_dyn(name, self.node(arg_trees[0]))
        function = FUNCTIONS.get(name)
        if function is None:
            raise SelectorError(f"undeclared reference to '{name}'")
        args = [self.node(t) for t in arg_trees]
        if name == "matches":
            self._check_regex(arg_trees[1:2])
        return self._call(function, args, member=False)

    def _check_regex(self, pattern: list[Tree[Token]]) -> None:
        if not pattern:
            return
        literal = self._string_literal(pattern[0])
        if literal is not None:
            try:
                compile_regex(literal)
            except ValueError as e:
                raise SelectorError(str(e)) from None

    def _string_literal(self, tree: Tree[Token]) -> str | None:
        while isinstance(tree, Tree) and len(tree.children) == 1:
            child = tree.children[0]
            if isinstance(child, Token):
                return decode_string(str(child)) if child.type == "STRING_LIT" else None
            tree = child
        return None

    def _member_dot_arg(self, tree: Tree[Token]) -> Node:
        target_tree = tree.children[0]
        assert isinstance(target_tree, Tree)
        name = str(tree.children[1])
        extra = tree.children[2] if len(tree.children) > 2 else None
        arg_trees = self._args(extra if isinstance(extra, Tree) else None)
        if name == "bind" and self._is_ident(target_tree, "cel"):
            return self._bind(arg_trees)
        namespace = self._ident_name(target_tree)
        if namespace is not None and namespace not in self.scope:
            qualified = FUNCTIONS.get(f"{namespace}.{name}")
            if qualified is None:
                raise SelectorError(f"undeclared reference to '{namespace}.{name}'")
            return self._call(qualified, [self.node(t) for t in arg_trees], member=False)
        target = self.node(target_tree)
        if name == "__opt_select__":
            field = self._string_literal(arg_trees[0]) if len(arg_trees) == 1 else None
            assert field is not None
            return self._select(target, field, optional=True)
        if name == "__opt_index__" and len(arg_trees) == 1:
            return self._index(target, self.node(arg_trees[0]), optional=True)
        if name in ("optMap", "optFlatMap") and len(arg_trees) == 2:
            return self._opt_map(name, target, arg_trees)
        if (
            name in _TWO_VARIABLE
            and len(arg_trees) >= 3
            and self._ident_name(arg_trees[1]) is not None
            and self._ident_name(arg_trees[0]) is not None
        ) or name in _TWO_VARIABLE_ONLY:
            return self._two_variable(name, target, arg_trees)
        if name == "sortBy" and len(arg_trees) == 2 and self._ident_name(arg_trees[0]):
            return self._sort_by(target, arg_trees)
        if name in _MACROS and arg_trees and self._ident_name(arg_trees[0]) is not None:
            return self._macro(name, target, arg_trees)
        function = FUNCTIONS.get(name)
        if function is None:
            raise SelectorError(f"undeclared reference to '{name}'")
        args = [target, *(self.node(t) for t in arg_trees)]
        if name in ("matches", "find", "findAll"):
            self._check_regex(arg_trees[:1])
        return self._call(function, args, member=True)

    def _ident_name(self, tree: Tree[Token]) -> str | None:
        while isinstance(tree, Tree):
            if _data(tree) == "ident":
                return str(tree.children[0])
            trees = _trees(tree.children)
            if len(trees) != 1 or len(tree.children) != 1:
                return None
            tree = trees[0]
        return None

    def _is_ident(self, tree: Tree[Token], name: str) -> bool:
        return self._ident_name(tree) == name and name not in self.scope

    # ----- macros -----------------------------------------------------------
    def _has(self, args: list[Tree[Token]]) -> Node:
        select = self._unwrap(args[0]) if len(args) == 1 else None
        if select is None or _data(select) != "member_dot":
            raise SelectorError("invalid argument to has() macro")
        operand_tree = select.children[0]
        assert isinstance(operand_tree, Tree)
        operand = self.node(operand_tree)
        field = str(select.children[1])
        self._select_type(operand.type, field)
        run = operand.run

        def has(frame: Frame) -> bool:
            value = run(frame)
            if isinstance(value, DomainMap):
                return True
            if isinstance(value, dict):
                return field in value
            # cel-go answers false (not an error) for a presence test on a scalar.
            return isinstance(value, _DeviceMarker)

        return Node(BOOL, has)

    def _unwrap(self, tree: Tree[Token]) -> Tree[Token] | None:
        while isinstance(tree, Tree):
            if _data(tree) in ("member_dot", "member_dot_arg", "member_index", "ident"):
                return tree
            trees = _trees(tree.children)
            if len(trees) != 1 or len(tree.children) != 1:
                return None
            tree = trees[0]
        return None

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

    # ----- selection and indexing -------------------------------------------
    def _select_type(self, operand: Type, field: str) -> Type:
        if operand == DEVICE:
            found = DEVICE_FIELDS.get(field)
            if found is None:
                raise SelectorError(f"undefined field '{field}'")
            return found
        if operand.name == "map":
            if not assignable(operand.params[0], STRING):
                raise SelectorError(f"type '{operand}' does not support field selection")
            return operand.params[1]
        if operand.unknown:
            return DYN
        raise SelectorError(f"type '{operand}' does not support field selection")

    def _type_or_dyn(self, name: str, arg: Node) -> Node:
        run = arg.run
        if name == "dyn":
            node = Node(DYN, run, arg.constant)
            return node if arg.constant else self._charged(node, 1)
        static = arg.type
        node = Node(type_of(static), lambda frame: CelType(kind_name(run(frame))))
        return node if arg.constant else self._charged(node, 1)

    def _member_dot(self, tree: Tree[Token]) -> Node:
        operand_tree = tree.children[0]
        assert isinstance(operand_tree, Tree)
        field = str(tree.children[1])
        namespace = self._ident_name(operand_tree)
        if namespace is not None and namespace not in self.scope:
            qualified = f"{namespace}.{field}"
            if qualified in TYPE_NAMES:
                value = CelType(qualified)
                return Node(type_of(Type(qualified)), lambda frame: value, constant=True)
            raise SelectorError(f"undeclared reference to '{qualified}'")
        return self._select(self.node(operand_tree), field, optional=False)

    def _select(self, operand: Node, field: str, optional: bool) -> Node:
        """``a.f`` (or ``a.?f``); selecting on an optional yields an optional."""
        static = operand.type
        wrapped = static.name == "optional_type"
        inner = static.params[0] if wrapped else static
        result = self._select_type(inner, field)
        run = operand.run
        if optional:
            node = Node(optional_of(result), lambda frame: opt_select(run(frame), field))
        elif wrapped:
            node = Node(optional_of(result), lambda frame: _opt_apply(run(frame), select, field))
        elif static == DEVICE:
            node = Node(result, lambda frame: run(frame)[field])
        else:
            node = Node(result, lambda frame: select(run(frame), field))
        return self._qualified(operand, node)

    def _member_index(self, tree: Tree[Token]) -> Node:
        operand_tree, index_tree = _trees(tree.children)
        return self._index(self.node(operand_tree), self.node(index_tree), optional=False)

    def _index(self, operand: Node, index: Node, optional: bool) -> Node:
        """``a[k]`` (or ``a[?k]``); indexing an optional yields an optional."""
        wrapped = operand.type.name == "optional_type"
        container = operand.type.params[0] if wrapped else operand.type
        if container.name == "list":
            if not assignable(INT, index.type):
                raise _index_error(container, index.type)
            result = container.params[0]
        elif container.name == "map":
            if not self._comparable(container.params[0], index.type):
                raise _index_error(container, index.type)
            result = container.params[1]
        elif container.unknown:
            result = DYN
        else:
            raise _index_error(container, index.type)
        run, key = operand.run, index.run
        if optional:
            node = Node(optional_of(result), lambda frame: opt_lookup(run(frame), key(frame)))
        elif wrapped:
            node = Node(
                optional_of(result), lambda frame: _opt_apply(run(frame), lookup, key(frame))
            )
        else:
            node = Node(result, lambda frame: lookup(run(frame), key(frame)))
        return self._qualified(operand, node)

    def _member_object(self, tree: Tree[Token]) -> Node:
        raise SelectorError("message construction is not supported in device selectors")

    # ----- primaries -------------------------------------------------------
    def _ident(self, tree: Tree[Token]) -> Node:
        name = str(tree.children[0])
        found = self.scope.get(name)
        if found is None and name in TYPE_NAMES:
            value = CelType(name)
            return Node(type_of(Type(name)), lambda frame: value, constant=True)
        if found is None:
            raise SelectorError(f"undeclared reference to '{name}'")
        return self._charged(Node(found, lambda frame: frame[name], attribute=True), 1)

    def _dot_ident(self, tree: Tree[Token]) -> Node:
        return self._ident(tree)

    def _dot_ident_arg(self, tree: Tree[Token]) -> Node:
        return self._ident_arg(tree)

    def _paren_expr(self, tree: Tree[Token]) -> Node:
        return self.node(_trees(tree.children)[0])

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
        if not types:
            return DYN
        first = types[0]
        for other in types[1:]:
            if other != first:
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


def _not_equal(left: Any, right: Any) -> bool:
    return not equal(left, right)


def _member_of(item: Any, container: Any) -> bool:
    return contains(container, item)


def _opt_apply(value: Any, step: Callable[[Any, Any], Any], arg: Any) -> Any:
    """Apply a select or index step inside an optional (none stays none)."""
    if not isinstance(value, Opt):
        return Opt(step(value, arg))
    return Opt(step(value.value, arg)) if value.present else value


def _index_error(container: Type, index: Type) -> SelectorError:
    return SelectorError(
        f"found no matching overload for '_[_]' applied to '({container}, {index})'"
    )


class _DeviceMarker(dict[str, Any]):
    """The runtime value of ``device``: a dict of its four fields."""


def device_frame(
    driver: str, attributes: DomainMap, capacity: DomainMap, multi: bool = False
) -> Frame:
    """The variable frame for one device."""
    device = _DeviceMarker(
        driver=driver,
        attributes=attributes,
        capacity=capacity,
        allowMultipleAllocations=multi,
    )
    return {"device": device}


def compile_tree(tree: Tree[Token], variables: Mapping[str, Type] = DRA_VARIABLES) -> Node:
    """Check and compile a parse tree; the result type must be bool or unknown.

    ``variables`` declares the identifiers the expression may reference; the
    frame given to ``Node.run`` must bind each of them.
    """
    compiler = _Compiler(variables)
    node = compiler.node(tree)
    if node.type not in (BOOL, ANY):
        raise SelectorError(f"must evaluate to bool or the unknown type, not {node.type}")
    if not compiler.sized:
        return node
    # Macros and size-dependent calls can approach the cost limit: track it.
    run = _Compiler(variables, tracked=True).node(tree).run

    def tracked(frame: Frame) -> Any:
        inner = dict(frame)
        meter = inner[METER] = [0]
        value = run(inner)
        if meter[0] > COST_LIMIT:
            raise limit_exceeded()
        return value

    return Node(node.type, tracked)
