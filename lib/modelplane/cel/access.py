"""Runtime field selection, indexing and membership on CEL values, with cel-go's errors.

``select(value, field)`` and ``lookup(container, key)`` implement ``a.f``
and ``a[k]`` (a missing device-attribute domain is an empty map, as in
Kubernetes); ``opt_select``/``opt_lookup`` implement ``a.?f`` and ``a[?k]``
(an empty optional for a missing key or an out-of-range index);
``contains`` implements ``in``.  Pure functions raising ``EvalError``.
"""

from __future__ import annotations

from typing import Any

from modelplane.cel.values import (
    LISTS,
    NONE,
    DomainMap,
    EvalError,
    Opt,
    equal,
    is_number,
    kind_name,
    no_overload,
    number_value,
)

__all__ = ["contains", "key_text", "lookup", "opt_lookup", "opt_select", "select"]


def key_text(key: object) -> str:
    return key if isinstance(key, str) else repr(key)


_MISSING = object()


def _key_matches(candidate: object, key: object) -> bool:
    if is_number(candidate) and is_number(key):
        return number_value(candidate) == number_value(key)
    return type(candidate) is type(key) and candidate == key


def _find(container: dict[Any, Any], key: Any) -> Any:
    if type(key) is str:
        return container.get(key, _MISSING)
    for candidate, value in container.items():
        if _key_matches(candidate, key):
            return value
    return _MISSING


def lookup(container: Any, key: Any) -> Any:
    """Index a map or list at runtime, with cel-go's errors."""
    if isinstance(container, dict):
        found = _find(container, key)
        if found is not _MISSING:
            return found
        if isinstance(container, DomainMap):
            return {}
        raise EvalError(f"no such key: {key_text(key)}")
    if isinstance(container, LISTS):
        if not is_number(key):
            raise no_overload("_[_]", container, key)
        index = number_value(key)
        if isinstance(index, float) and not index.is_integer():
            raise EvalError(f"unsupported index value {index}")
        position = int(index)
        if not 0 <= position < len(container):
            raise EvalError(f"index out of bounds: {position}")
        return container[position]
    raise no_overload("_[_]", container, key)


def contains(container: Any, key: Any) -> bool:
    if isinstance(container, LISTS):
        return any(equal(key, item) for item in container)
    if isinstance(container, dict):
        return _find(container, key) is not _MISSING
    raise no_overload("@in", key, container)


def select(value: Any, field: str) -> Any:
    """``value.field``."""
    if isinstance(value, dict):
        if field in value:
            return value[field]
        if isinstance(value, DomainMap):
            return {}
        raise EvalError(f"no such key: {field}")
    raise EvalError(f"type '{kind_name(value)}' does not support field selection")


def opt_select(value: Any, field: str) -> Opt:
    """``value.?field``: an empty optional when the field or key is absent."""
    if isinstance(value, Opt):
        return opt_select(value.value, field) if value.present else value
    if isinstance(value, dict):
        if field in value:
            return Opt(value[field])
        return Opt({}) if isinstance(value, DomainMap) else Opt(NONE)
    return Opt(NONE)  # cel-go: a presence test on a scalar is false, not an error


def opt_lookup(container: Any, key: Any) -> Opt:
    """``container[?key]``: an empty optional when the key or index is absent."""
    if isinstance(container, Opt):
        return opt_lookup(container.value, key) if container.present else container
    if isinstance(container, dict):
        found = _find(container, key)
        if found is not _MISSING:
            return Opt(found)
        return Opt({}) if isinstance(container, DomainMap) else Opt(NONE)
    if isinstance(container, LISTS) and is_number(key):
        index = number_value(key)
        if isinstance(index, float) and not index.is_integer():
            raise EvalError(f"unsupported index value {index}")
        if 0 <= int(index) < len(container):
            return Opt(container[int(index)])
        return Opt(NONE)
    raise no_overload("_[?_]", container, key)
