"""Defaulting and structural checks of an object against a CRD's OpenAPI schema.

This mirrors what the API server does before CEL rules run: null values of
typed fields are dropped, schema defaults are filled in top-down, and then
types, required fields, enums, bounds, patterns, lengths, list uniqueness and
unknown fields (strict, as ``kubectl apply --validate=strict``) are checked.

Guarantees: ``apply_defaults`` mutates only the value it is given; ``check``
never raises on malformed input, it reports it as a ``(path, message)`` issue.
Only nodes marked ``x-kubernetes-preserve-unknown-fields`` accept any content.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

Issue = tuple[str, str]
"""A problem at a field: (path such as spec.engines[0].name, message)."""

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_ATOMS = (str, int, float, bool, type(None))


def copy_json(value: Any) -> Any:
    """A deep copy, fast for JSON data (dict, list, scalars); other values use ``deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Drops nulls of typed fields and fills schema defaults, as the API server does."""
    return _shape(schema).defaults(value)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _type_issue(schema: Mapping[str, Any], value: Any) -> str | None:
    if schema.get(INT_OR_STRING):
        ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
        return None if ok else f"Invalid value: {_show(value)}: must be an integer or a string"
    want = schema.get("type")
    test = _TYPE_CHECKS.get(want) if isinstance(want, str) else None
    if test is None or test(value):
        return None
    return f"Invalid value: {_show(value)}: must be of type {want}"


def _scalar_issues(schema: Mapping[str, Any], value: Any) -> list[str]:
    out: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_show(v) for v in schema["enum"])
        out.append(f"Unsupported value: {_show(value)}: supported values: {allowed}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(
                f"Invalid value: {value}: must be greater than or equal to {schema['minimum']}"
            )
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"Invalid value: {value}: must be less than or equal to {schema['maximum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"Too long: may not be more than {schema['maxLength']} characters")
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(
                f"Invalid value: {_show(value)}: must be at least {schema['minLength']} characters"
            )
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            out.append(f"Invalid value: {_show(value)}: should match '{schema['pattern']}'")
        if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
            out.append(f"Invalid value: {_show(value)}: must be an RFC 3339 date-time")
    return out


def _list_issues(schema: Mapping[str, Any], value: list[Any], path: str) -> list[Issue]:
    out: list[Issue] = []
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append((path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.append(
            (path, f"Invalid value: {len(value)}: must have at least {schema['minItems']} items")
        )
    list_type = schema.get("x-kubernetes-list-type")
    keys: list[str] = list(schema.get("x-kubernetes-list-map-keys", ()))
    seen: set[str] = set()
    for i, item in enumerate(value):
        if list_type == "map" and isinstance(item, dict):
            ident = _show({k: item.get(k) for k in keys})
        elif list_type == "set":
            ident = _show(item)
        else:
            continue
        if ident in seen:
            out.append((f"{path}[{i}]", f"Duplicate value: {ident}"))
        seen.add(ident)
    return out


RULES = "x-kubernetes-validations"

Visitor = Callable[[Mapping[str, Any], Any, str], list[Issue]]
"""Called on each node that declares rules (``RULES``) and whose subtree is clean;
returns the rules' issues (CEL)."""

_NO_SKIP: frozenset[str] = frozenset()
_SCALAR_KEYS = ("enum", "minimum", "maximum", "maxLength", "minLength", "pattern", "format")
_LIST_KEYS = ("maxItems", "minItems", "x-kubernetes-list-type")


def check(
    schema: Mapping[str, Any],
    value: Any,
    path: str,
    on_clean: Visitor | None = None,
    skip: frozenset[str] = _NO_SKIP,
) -> list[Issue]:
    """Every structural issue of ``value``; ``on_clean`` runs on nodes with rules and
    without an issue.

    ``skip`` names properties of this node that are validated elsewhere (metadata).
    """
    return _shape(schema).check(value, path, on_clean, skip)


_SHAPES: dict[int, tuple[Mapping[str, Any], _Shape]] = {}


def _shape(schema: Mapping[str, Any]) -> _Shape:
    """The compiled form of ``schema``, built once per schema object."""
    hit = _SHAPES.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    shape = _Shape(schema)
    _SHAPES[id(schema)] = (schema, shape)
    return shape


class _Shape:
    """One schema node with what the walk asks of it looked up once: its type test,
    whether it has scalar or list constraints, its children compiled in turn."""

    __slots__ = (
        "counted",
        "defaults_",
        "extra",
        "int_or_string",
        "items",
        "listed",
        "nullable",
        "preserve",
        "props",
        "required",
        "ruled",
        "scalar",
        "schema",
        "type_test",
        "walk",
    )

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self.int_or_string = bool(schema.get(INT_OR_STRING))
        want = schema.get("type")
        self.type_test = _TYPE_CHECKS.get(want) if isinstance(want, str) else None
        self.scalar = any(k in schema for k in _SCALAR_KEYS)
        self.listed = any(k in schema for k in _LIST_KEYS)
        self.preserve = bool(schema.get(PRESERVE))
        props: Mapping[str, Any] | None = schema.get("properties")
        self.walk = not (self.preserve and props is None)
        self.props = None if props is None else {k: _shape(v) for k, v in props.items()}
        extra = schema.get("additionalProperties")
        self.extra = _shape(extra) if isinstance(extra, Mapping) else None
        items = schema.get("items")
        self.items = _shape(items) if isinstance(items, Mapping) else None
        self.required: tuple[str, ...] = tuple(schema.get("required", ()))
        self.ruled = bool(schema.get(RULES))
        self.counted = "maxProperties" in schema or "minProperties" in schema
        self.defaults_ = [(k, v["default"]) for k, v in (props or {}).items() if "default" in v]
        self.nullable = frozenset(k for k, v in (props or {}).items() if v.get("nullable"))

    def defaults(self, value: Any) -> Any:
        if not self.walk:
            return value
        if isinstance(value, dict):
            props = self.props
            if props is not None:
                for key in [k for k, v in value.items() if v is None and k in props]:
                    if key not in self.nullable:
                        del value[key]
                for key, default in self.defaults_:
                    if key not in value:
                        value[key] = copy_json(default)
                for key, sub in props.items():
                    if key in value:
                        value[key] = sub.defaults(value[key])
            elif self.extra is not None:
                extra = self.extra
                for key in list(value):
                    value[key] = extra.defaults(value[key])
        elif isinstance(value, list) and self.items is not None:
            items = self.items
            for i, item in enumerate(value):
                value[i] = items.defaults(item)
        return value

    def check(
        self, value: Any, path: str, on_clean: Visitor | None, skip: frozenset[str]
    ) -> list[Issue]:
        schema = self.schema
        if self.int_or_string or (self.type_test is not None and not self.type_test(value)):
            type_issue = _type_issue(schema, value)
            if type_issue is not None:
                return [(path, type_issue)]
        issues = [(path, m) for m in _scalar_issues(schema, value)] if self.scalar else []
        if isinstance(value, dict):
            if self.walk:
                issues += self._object_issues(value, path, on_clean, skip)
        elif isinstance(value, list):
            if self.listed:
                issues += _list_issues(schema, value, path)
            items = self.items
            if items is not None:
                for i, item in enumerate(value):
                    issues += items.check(item, f"{path}[{i}]", on_clean, _NO_SKIP)
        if not issues and on_clean is not None and self.ruled:
            issues = on_clean(schema, value, path)
        return issues

    def _object_issues(
        self, value: dict[str, Any], path: str, on_clean: Visitor | None, skip: frozenset[str]
    ) -> list[Issue]:
        out: list[Issue] = _count_issues(self.schema, value, path) if self.counted else []
        for req in self.required:
            if req not in value:
                out.append((child(path, req), "Required value"))
        props, extra = self.props, self.extra
        for key, sub in value.items():
            if key in skip:
                continue
            shape = props.get(key) if props is not None else None
            if shape is not None:
                out += shape.check(sub, child(path, key), on_clean, _NO_SKIP)
            elif extra is not None:
                out += extra.check(sub, f"{path}[{key}]", on_clean, _NO_SKIP)
            elif not self.preserve:
                out.append((child(path, str(key)), f'unknown field "{key}"'))
        return out


def _count_issues(schema: Mapping[str, Any], value: dict[str, Any], path: str) -> list[Issue]:
    out: list[Issue] = []
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        out.append(
            (path, f"Too many: {len(value)}: must have at most {schema['maxProperties']} entries")
        )
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        out.append(
            (
                path,
                f"Invalid value: {len(value)}: must have at least "
                f"{schema['minProperties']} entries",
            )
        )
    return out
