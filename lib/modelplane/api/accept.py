"""The fast path of validation: one pass that copies, defaults and checks a valid object.

``accepting(schema, holds)`` compiles a CRD schema, once, into nested closures, one
per schema node, each specialised to what its node asks (its type, its constraints,
its children, its defaults). Called on a value, the root closure returns what
``apply_defaults`` followed by a clean ``check`` would leave, built in one walk:
a new object, the input untouched. On the first thing that is not plainly valid
it raises ``RejectedError``, and the caller runs the general walk
(``modelplane.api.structural``), which finds every issue and words its message.
So this path never words an error, and an object it accepts is one the general
walk accepts with the same defaulted result.

``holds(node)`` gives the test of a schema node's CEL rules: whether every one holds
for a value (False when unsure: then the general walk and the reference decide). The
root's ``metadata`` is defaulted but not checked here, as in the general walk
(``modelplane.api.validation`` checks it).

Guarantees: for every value, either ``RejectedError`` is raised or the result equals
``apply_defaults(schema, copy)`` of a copy that ``check`` finds no issue in;
nodes the fast path does not handle (``properties`` beside ``additionalProperties``,
``items`` under a node that keeps unknown fields) always reject.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelplane.api.structural import (
    _list_issues,
    _scalar_issues,
    _Shape,
    _shape,
    copy_json,
)

Accept = Callable[[Any], Any]
"""A compiled node: the value defaulted and checked, as a new value, or ``RejectedError``."""

Holds = Callable[[Mapping[str, Any]], Callable[[Any], bool]]
"""For a schema node with rules: whether every rule holds for a (defaulted) value."""


class RejectedError(Exception):
    """The value may be invalid: the general walk must look at it."""


_REJECTED = RejectedError()

_EXACT_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_gate(node: _Shape) -> Callable[[Any], bool] | None:
    """The node's type test (as ``structural`` tests it), or None when any value passes."""
    if node.int_or_string:
        return lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
    want = node.schema.get("type")
    kinds = _EXACT_TYPES.get(want) if isinstance(want, str) else None
    if kinds is None:
        return None
    if want in ("integer", "number"):
        return lambda v: isinstance(v, kinds) and not isinstance(v, bool)
    return lambda v: isinstance(v, kinds)


def accepting(schema: Mapping[str, Any], holds: Holds, *, unchecked: str = "") -> Accept:
    """The compiled fast path of ``schema``; ``unchecked`` names a property that is only
    defaulted, not checked (the root's ``metadata``)."""
    return _compile(_shape(schema), holds, unchecked)


def _compile(node: _Shape, holds: Holds, unchecked: str = "") -> Accept:
    if node.props is not None and node.extra is not None:
        return _reject
    if not node.walk and node.items is not None:
        return _reject
    schema = node.schema
    gate = _type_gate(node)
    if schema.get("type") in _ATOM_TYPES and not node.ruled and not node.int_or_string:
        return _leaf(node, gate)
    scalar = node.scalar
    listed = _list_check(schema) if node.listed else None
    hold = holds(schema) if node.ruled else None
    build = _object_builder(node, holds, unchecked) if node.walk else copy_json

    def accept(value: Any) -> Any:
        if gate is not None and not gate(value):
            raise _REJECTED
        out = build(value)
        if scalar and _scalar_issues(schema, out):
            raise _REJECTED
        if listed is not None and isinstance(out, list) and not listed(out):
            raise _REJECTED
        if hold is not None and not hold(out):
            raise _REJECTED
        return out

    return accept


_ATOM_TYPES = frozenset({"string", "integer", "number", "boolean"})
_KNOWN_MAX = 4096


def _leaf(node: _Shape, gate: Callable[[Any], bool] | None) -> Accept:
    """A string, number or boolean node without rules: its value is kept as it is; each
    string found valid is remembered (the checks are a function of the string alone)."""
    schema = node.schema
    scalar = node.scalar
    known: set[str] = set()

    def accept(value: Any) -> Any:
        if value.__class__ is str and value in known:
            return value
        if gate is not None and not gate(value):
            raise _REJECTED
        if scalar and _scalar_issues(schema, value):
            raise _REJECTED
        if value.__class__ is str:
            if len(known) >= _KNOWN_MAX:
                known.clear()
            known.add(value)
        return value

    return accept


def _list_check(schema: Mapping[str, Any]) -> Callable[[list[Any]], bool]:
    """Whether a list is within the node's item bounds and, for a map or set list, has no
    duplicate; a map list whose keys are all strings is checked by tuples of them, any
    other (rare) case by ``structural``'s own check."""
    low = schema.get("minItems", 0)
    high = schema.get("maxItems")
    keys = tuple(schema.get("x-kubernetes-list-map-keys", ()))
    by_keys = schema.get("x-kubernetes-list-type") == "map"
    other = not by_keys and schema.get("x-kubernetes-list-type") is not None

    def fits(value: list[Any]) -> bool:
        if len(value) < low or (high is not None and len(value) > high):
            return False
        if other:
            return not _list_issues(schema, value, "")
        if by_keys:
            seen: set[tuple[Any, ...]] = set()
            for item in value:
                if not isinstance(item, dict):
                    continue
                ident = tuple(item.get(key) for key in keys)
                if not all(part.__class__ is str for part in ident):
                    return not _list_issues(schema, value, "")
                if ident in seen:
                    return False
                seen.add(ident)
        return True

    return fits


def _reject(value: Any) -> Any:
    raise _REJECTED


def _defaults_only(node: _Shape) -> Accept:
    return lambda v: node.defaults(copy_json(v))


def _object_builder(node: _Shape, holds: Holds, unchecked: str) -> Accept:
    """What a walked node builds: a dict through its properties (or
    ``additionalProperties``), dropped nulls and defaults; a list through its items."""
    props: dict[Any, Accept] = {
        key: _defaults_only(sub) if key == unchecked else _compile(sub, holds)
        for key, sub in (node.props or {}).items()
    }
    extra = _compile(node.extra, holds) if node.extra is not None else None
    items = _compile(node.items, holds) if node.items is not None else None
    nullable = node.nullable
    preserve = node.preserve
    defaults = [(key, props[key], default) for key, default in node.defaults_]
    required = node.required
    counted = node.counted
    schema = node.schema

    def build(value: Any) -> Any:
        if not isinstance(value, dict):
            if isinstance(value, list) and items is not None:
                return [items(sub) for sub in value]
            return copy_json(value)
        out: dict[Any, Any] = {}
        for key, sub in value.items():
            accept = props.get(key)
            if accept is not None:
                if sub is None and key not in nullable:
                    continue  # the API server drops a null of a typed field
                out[key] = accept(sub)
            elif extra is not None:
                out[key] = extra(sub)
            elif preserve:
                out[key] = copy_json(sub)
            else:
                raise _REJECTED  # an unknown field
        for key, accept, default in defaults:
            if key not in out:
                out[key] = accept(copy_json(default))
        for key in required:
            if key not in out:
                raise _REJECTED
        if counted and not _counts_fit(schema, out):
            raise _REJECTED
        return out

    return build


def _counts_fit(schema: Mapping[str, Any], value: dict[str, Any]) -> bool:
    low: int = schema.get("minProperties", 0)
    high: int = schema.get("maxProperties", len(value))
    return low <= len(value) <= high
