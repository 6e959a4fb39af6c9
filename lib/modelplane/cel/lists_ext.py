"""List and set functions: Kubernetes' lists library, cel-go's lists (v2) and sets extensions.

Kubernetes: ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``,
``lastIndexOf``.  cel-go lists extension at the version Kubernetes 1.36
enables: ``slice``, ``flatten``, ``sort``, ``lists.range``, ``reverse``,
``distinct``.  Sets: ``sets.contains``, ``sets.intersects``,
``sets.equivalent``.  Element comparison follows CEL (numbers compare across
int, uint and double); errors carry cel-go's and Kubernetes' messages.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

from modelplane.cel.cost import COST_LIMIT, limit_exceeded
from modelplane.cel.functions import add_values, order_values
from modelplane.cel.overloads import Function, Impl, Overload
from modelplane.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    INT,
    STRING,
    UINT,
    Type,
    element,
    list_of,
    unify,
)
from modelplane.cel.values import LISTS, EvalError, UInt, equal, no_overload

__all__ = ["LISTS_AND_SETS", "sort_values"]

_COMPARABLE = (INT, UINT, DOUBLE, BOOL, STRING, BYTES)
_SUMMABLE = (INT, UINT, DOUBLE)
_LIST = list_of(DYN)


def _list(name: str, value: Any, *rest: Any) -> Sequence[Any]:
    if not isinstance(value, LISTS):
        raise no_overload(name, value, *rest)
    return value


def _elem(args: Sequence[Type]) -> Type:
    first = args[0]
    return first.params[0] if first.name == "list" else DYN


def _flat(args: Sequence[Type]) -> Type:
    return element(args[0]) if element(args[0]).name == "list" else _LIST


def _same(args: Sequence[Type]) -> Type:
    return args[0] if args[0].name == "list" else _LIST


def _is_sorted(items: Any) -> bool:
    values = _list("isSorted", items)
    return all(order_values("isSorted", a, b) <= 0 for a, b in itertools.pairwise(values))


def _summer(zero: Any) -> Impl:
    def run(items: Any) -> Any:
        total = zero
        for i, item in enumerate(_list("sum", items)):
            total = item if i == 0 and zero is None else add_values(total, item)
        return 0 if total is None else total

    return run


def _extreme(name: str, prefer: int) -> Impl:
    def run(items: Any) -> Any:
        values = _list(name, items)
        if not values:
            raise EvalError(f"{name} called on empty list")
        best = values[0]
        for item in values[1:]:
            if order_values(name, best, item) == prefer:
                best = item
        return best

    return run


def _index_of(items: Any, value: Any) -> int:
    for i, item in enumerate(_list("indexOf", items, value)):
        if equal(item, value):
            return i
    return -1


def _last_index_of(items: Any, value: Any) -> int:
    values = _list("lastIndexOf", items, value)
    for i in range(len(values) - 1, -1, -1):
        if equal(values[i], value):
            return i
    return -1


def _slice(items: Any, start: Any, end: Any) -> tuple[Any, ...]:
    values = _list("slice", items, start, end)
    if type(start) is not int or type(end) is not int:
        raise no_overload("slice", items, start, end)
    if start < 0 or end < 0:
        raise EvalError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise EvalError(
            f"cannot slice({start}, {end}), start index must be less than or equal to end index"
        )
    if len(values) < end:
        raise EvalError(f"cannot slice({start}, {end}), list is length {len(values)}")
    return tuple(values[start:end])


def _flatten(items: Any, depth: Any = 1) -> tuple[Any, ...]:
    values = _list("flatten", items, depth)
    if type(depth) is not int:
        raise no_overload("flatten", items, depth)
    if depth < 0:
        raise EvalError("level must be non-negative")
    out: list[Any] = []
    for item in values:
        if isinstance(item, LISTS) and depth > 0:
            out.extend(_flatten(item, depth - 1))
        else:
            out.append(item)
    return tuple(out)


def _sort(items: Any) -> tuple[Any, ...]:
    values = list(_list("sort", items))
    if not values:
        return ()
    kind = type(values[0])
    if any(type(v) is not kind for v in values):
        raise EvalError("list elements must have the same type")
    if kind in (tuple, list, dict):
        raise EvalError("list elements must be comparable")
    ordered = sorted(values, key=functools.cmp_to_key(lambda a, b: order_values("sort", a, b)))
    return tuple(ordered)


def sort_values(keys: Sequence[Any]) -> list[int]:
    """The positions of ``keys`` in sorted order (stable), for ``sortBy``."""
    _sort(keys)  # the same type checks and errors as sort()

    def compare(i: int, j: int) -> int:
        return order_values("sortBy", keys[i], keys[j])

    return sorted(range(len(keys)), key=functools.cmp_to_key(compare))


def _range(n: Any) -> tuple[int, ...]:
    if type(n) is not int:
        raise no_overload("lists.range", n)
    if n > COST_LIMIT:
        raise limit_exceeded()  # its cost alone (n + 11) is over the limit
    return tuple(range(n))


def _reverse(items: Any) -> tuple[Any, ...]:
    return tuple(reversed(_list("reverse", items)))


def _distinct(items: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    for item in _list("distinct", items):
        if not any(equal(item, seen) for seen in out):
            out.append(item)
    return tuple(out)


def _contains_all(name: str, items: Sequence[Any], wanted: Sequence[Any]) -> bool:
    return all(any(equal(w, i) for i in items) for w in wanted)


def _sets_contains(a: Any, b: Any) -> bool:
    return _contains_all("sets.contains", _list("sets.contains", a, b), _list("sets.contains", b))


def _sets_equivalent(a: Any, b: Any) -> bool:
    x, y = _list("sets.equivalent", a, b), _list("sets.equivalent", b)
    return _contains_all("", x, y) and _contains_all("", y, x)


def _sets_intersects(a: Any, b: Any) -> bool:
    x, y = _list("sets.intersects", a, b), _list("sets.intersects", b)
    return any(equal(u, v) for u in x for v in y)


def _member(
    params: tuple[Type, ...], result: Type, impl: Impl | None = None, **kw: Any
) -> Overload:
    return Overload(
        params, result, True, impl, result_of=kw.get("result_of"), check=kw.get("check")
    )


def _global(params: tuple[Type, ...], result: Type, **kw: Any) -> Overload:
    return Overload(params, result, result_of=kw.get("result_of"), check=kw.get("check"))


def _per_elem(
    name: str, types: tuple[Type, ...], impls: dict[Type, Impl] | Impl, result: Type | None
) -> Function:
    overloads = []
    for t in types:
        impl = impls.get(t) if isinstance(impls, dict) else impls
        if result is None:
            overloads.append(_member((list_of(t),), t, impl, result_of=_elem))
        else:
            overloads.append(_member((list_of(t),), result, impl))
    default = next(o.impl for o in overloads if o.impl is not None)
    assert default is not None
    return Function(name, tuple(overloads), default)


_SUMS: dict[Type, Impl] = {
    INT: _summer(0),
    UINT: _summer(UInt(0)),
    DOUBLE: _summer(0.0),
}


def _same_elements(args: Sequence[Type]) -> bool:
    return unify(element(args[0]), element(args[1]))


def _elem_and_arg(args: Sequence[Type]) -> bool:
    return unify(element(args[0]), args[1])


LISTS_AND_SETS: tuple[Function, ...] = (
    _per_elem("isSorted", _COMPARABLE, _is_sorted, BOOL),
    _per_elem("sum", _SUMMABLE, _SUMS, None),
    _per_elem("min", _COMPARABLE, _extreme("min", 1), None),
    _per_elem("max", _COMPARABLE, _extreme("max", -1), None),
    Function("indexOf", (_member((_LIST, DYN), INT, _index_of, check=_elem_and_arg),), _index_of),
    Function(
        "lastIndexOf",
        (_member((_LIST, DYN), INT, _last_index_of, check=_elem_and_arg),),
        _last_index_of,
    ),
    Function("slice", (_member((_LIST, INT, INT), _LIST, result_of=_same),), _slice),
    Function(
        "flatten",
        (
            _member((list_of(_LIST),), _LIST, result_of=_flat),
            _member((_LIST, INT), _LIST),
        ),
        _flatten,
    ),
    Function(
        "sort",
        tuple(_member((list_of(t),), list_of(t)) for t in _COMPARABLE),
        _sort,
    ),
    Function("lists.range", (Overload((INT,), list_of(INT)),), _range),
    Function("reverse", (_member((_LIST,), _LIST, result_of=_same),), _reverse),
    Function("distinct", (_member((_LIST,), _LIST, result_of=_same),), _distinct),
    Function(
        "sets.contains", (_global((_LIST, _LIST), BOOL, check=_same_elements),), _sets_contains
    ),
    Function(
        "sets.equivalent", (_global((_LIST, _LIST), BOOL, check=_same_elements),), _sets_equivalent
    ),
    Function(
        "sets.intersects", (_global((_LIST, _LIST), BOOL, check=_same_elements),), _sets_intersects
    ),
)
