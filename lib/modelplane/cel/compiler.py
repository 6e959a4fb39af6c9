"""Type-check a parsed CEL expression and turn it into a Python closure.

Input is the Lark tree of ``modelplane.cel.parser`` (cel-python's grammar) and the declared
variables with their static types (by default the DRA environment's
``device``; a CRD validation rule declares ``self`` as ``dyn``); output is a
``Node``: the expression's static type plus a function from a variable frame
to the value.  Checking rejects what cel-go's checker rejects in the common cases
(undeclared variables, fields and functions, calls with no matching overload,
mistyped operators, non-homogeneous literals, invalid regex literals) and
raises ``SelectorError``.  Evaluation raises ``EvalError`` for runtime errors
and follows CEL's commutative error semantics for ``&&``, ``||`` and the
``all``/``exists`` macros.  Macros live in ``macros``, literals in
``aggregates``.  An expression using a macro or a size-dependent call is
compiled a second time with cel-go's cost metering and fails at runtime past
the DRA limit (``cost``).  No I/O; safe to share compiled nodes across threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lark import Token, Tree

from modelplane.cel.access import contains, lookup, opt_lookup, opt_select, select
from modelplane.cel.aggregates import AggregateCompiler
from modelplane.cel.cost import COST_LIMIT, METER, SIZED, call_cost, limit_exceeded
from modelplane.cel.format_ext import FormatArg, FormatError, check_format
from modelplane.cel.literals import decode_string
from modelplane.cel.macros import MacroCompiler
from modelplane.cel.model import SelectorError
from modelplane.cel.node import Frame, Node, _data, _trees
from modelplane.cel.overloads import Function, dispatch
from modelplane.cel.regex import compile_regex
from modelplane.cel.registry import FUNCTIONS
from modelplane.cel.types import (
    ANY,
    BOOL,
    DEVICE,
    DYN,
    INT,
    NULL,
    QUANTITY,
    STRING,
    Type,
    assignable,
    map_of,
    optional_of,
    type_of,
)
from modelplane.cel.values import (
    CelType,
    DomainMap,
    EvalError,
    Opt,
    equal,
    kind_name,
    no_overload,
)

__all__ = ["DRA_VARIABLES", "Frame", "Node", "compile_tree"]


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


# Type conversions of constants are evaluated when the program is planned.
_FOLDED = frozenset({"int", "uint", "double", "string"})


class _Compiler(MacroCompiler, AggregateCompiler):
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
        if name == "format":
            return self._format(target_tree, arg_trees)
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

    def _format(self, target_tree: Tree[Token], arg_trees: list[Tree[Token]]) -> Node:
        """``text.format(args)``: literals inside may mix types; a literal ``text`` with a
        list literal of arguments is checked now, as cel-go's format validator does."""
        self.in_format += 1
        try:
            args = [self.node(target_tree), *(self.node(t) for t in arg_trees)]
            node = self._call(FUNCTIONS["format"], args, member=True)
            text = self._string_literal(target_tree)
            items = self._literal_items(arg_trees[0], "list_lit") if len(arg_trees) == 1 else None
            if text is not None and items is not None:
                check_format(text, [self._format_arg(t) for t in items])
        except FormatError as e:
            raise SelectorError(str(e)) from None
        finally:
            self.in_format -= 1
        return node

    def _format_arg(self, tree: Tree[Token]) -> FormatArg:
        elements = self._literal_items(tree, "list_lit") or self._literal_items(tree, "map_lit")
        return FormatArg(self.node(tree).type.name, tuple(map(self._format_arg, elements or ())))

    def _literal_items(self, tree: Tree[Token], kind: str) -> list[Tree[Token]] | None:
        """The element trees of a list literal (keys and values of a map literal), or None."""
        while _data(tree) != kind:
            kids = _trees(tree.children)
            if len(kids) != 1 or len(tree.children) != 1:
                return None
            tree = kids[0]
        return self._args(next(iter(_trees(tree.children)), None))

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


def compile_tree(
    tree: Tree[Token], variables: Mapping[str, Type] = DRA_VARIABLES, *, metered: bool = True
) -> Node:
    """Check and compile a parse tree; the result type must be bool or unknown.

    ``variables`` declares the identifiers the expression may reference; the
    frame given to ``Node.run`` must bind each of them.  With ``metered=False``
    the DRA cost limit is not enforced (the caller has its own budget).
    """
    compiler = _Compiler(variables)
    node = compiler.node(tree)
    if node.type not in (BOOL, ANY):
        raise SelectorError(f"must evaluate to bool or the unknown type, not {node.type}")
    if not compiler.sized or not metered:
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
