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
    if schema.get(PRESERVE) and "properties" not in schema:
        return value
    if isinstance(value, dict):
        props: Mapping[str, Any] | None = schema.get("properties")
        if props is not None:
            for key in [k for k, v in value.items() if v is None and k in props]:
                if not props[key].get("nullable"):
                    del value[key]
            for key, sub in props.items():
                if key not in value and "default" in sub:
                    value[key] = copy_json(sub["default"])
            for key, sub in props.items():
                if key in value:
                    value[key] = apply_defaults(sub, value[key])
        elif isinstance(schema.get("additionalProperties"), Mapping):
            sub = schema["additionalProperties"]
            for key in list(value):
                value[key] = apply_defaults(sub, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items = schema["items"]
        for i, item in enumerate(value):
            value[i] = apply_defaults(items, item)
    return value


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


Visitor = Callable[[Mapping[str, Any], Any, str], list[Issue]]
"""Called on each node whose subtree is clean; returns rule issues (CEL)."""


def check(
    schema: Mapping[str, Any],
    value: Any,
    path: str,
    on_clean: Visitor | None = None,
    skip: frozenset[str] = frozenset(),
) -> list[Issue]:
    """Every structural issue of ``value``; ``on_clean`` runs on nodes without one.

    ``skip`` names properties of this node that are validated elsewhere (metadata).
    """
    type_issue = _type_issue(schema, value)
    if type_issue is not None:
        return [(path, type_issue)]
    issues = [(path, m) for m in _scalar_issues(schema, value)]
    if isinstance(value, dict) and not (schema.get(PRESERVE) and "properties" not in schema):
        issues += _object_issues(schema, value, path, on_clean, skip)
    elif isinstance(value, list):
        issues += _list_issues(schema, value, path)
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                issues += check(items, item, f"{path}[{i}]", on_clean)
    if not issues and on_clean is not None:
        issues = on_clean(schema, value, path)
    return issues


def _object_issues(
    schema: Mapping[str, Any],
    value: dict[str, Any],
    path: str,
    on_clean: Visitor | None,
    skip: frozenset[str],
) -> list[Issue]:
    out: list[Issue] = []
    props: Mapping[str, Any] | None = schema.get("properties")
    extra = schema.get("additionalProperties")
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
    for req in schema.get("required", ()):
        if req not in value:
            out.append((child(path, req), "Required value"))
    for key, sub in value.items():
        if key in skip:
            continue
        if props is not None and key in props:
            out += check(props[key], sub, child(path, key), on_clean)
        elif isinstance(extra, Mapping):
            out += check(extra, sub, f"{path}[{key}]", on_clean)
        elif not schema.get(PRESERVE):
            out.append((child(path, str(key)), f'unknown field "{key}"'))
    return out
