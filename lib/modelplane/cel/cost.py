"""cel-go's runtime cost model, as the DRA allocator tracks it (limit 1,000,000).

``call_cost(name, args, result)`` is the cost cel-go charges for one call,
with Kubernetes' ``library.CostEstimator`` and the lists extension's
trackers taking precedence over cel-go's defaults, exactly as they do in
Go.  The evaluator charges 1 per identifier, field selection and index, 10
per list and 30 per map it builds (literals of constants cost nothing, as
cel-go folds them), nothing for constants, ``&&``, ``||`` and ``?:``, and
expands macros as cel-go does.  ``SIZED`` names the calls whose cost grows
with their arguments; only expressions using one of them, or a macro, are
compiled with cost tracking (every other expression is bounded far below the
limit by its own length).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from modelplane.cel.values import LISTS, EvalError, Opt

__all__ = [
    "COST_LIMIT",
    "METER",
    "SIZED",
    "CostLimitError",
    "actual_size",
    "call_cost",
    "limit_exceeded",
]

COST_LIMIT = 1_000_000
"""resourceapi.CELSelectorExpressionMaxCost."""
METER = "$cost"
"""The frame key of a tracked evaluation's cost: a one-element list, shared by nested frames."""
_TRAVERSE = 0.1
_REGEX = 0.25
_ONE = frozenset(
    {
        "sign",
        "asInteger",
        "isInteger",
        "asApproximateFloat",
        "isGreaterThan",
        "isLessThan",
        "compareTo",
        "add",
        "sub",
        "major",
        "minor",
        "patch",
        "getScheme",
        "getHostname",
        "getHost",
        "getPort",
        "getEscapedPath",
        "getQuery",
        "masked",
        "prefixLength",
        "family",
        "isUnspecified",
        "isLoopback",
        "isLinkLocalMulticast",
        "isLinkLocalUnicast",
        "isGlobalUnicast",
    }
)
SIZED = frozenset(
    {
        "isSorted",
        "sum",
        "max",
        "min",
        "indexOf",
        "lastIndexOf",
        "replace",
        "split",
        "join",
        "find",
        "findAll",
        "matches",
        "slice",
        "flatten",
        "lists.range",
        "reverse",
        "distinct",
        "sort",
        "sets.contains",
        "sets.equivalent",
        "sets.intersects",
        "charAt",
        "substring",
        "lowerAscii",
        "upperAscii",
        "trim",
        "strings.quote",
    }
)


class CostLimitError(EvalError):
    """The evaluation's cost went over ``COST_LIMIT``."""


def limit_exceeded() -> CostLimitError:
    return CostLimitError("operation cancelled: actual cost limit exceeded")


def actual_size(value: Any) -> int:
    """cel-go's ``actualSize``: length of strings (code points), bytes, lists, maps; else 1."""
    if isinstance(value, str | bytes | tuple | list | dict):
        return len(value)
    if isinstance(value, Opt) and value.present:
        return actual_size(value.value)
    return 1


def _traversal(value: Any) -> int:
    if isinstance(value, str):
        return int(len(value.encode()) * _TRAVERSE)
    if isinstance(value, bytes):
        return int(len(value) * _TRAVERSE)
    if isinstance(value, LISTS):
        return sum(_traversal(v) for v in value)
    if isinstance(value, dict):
        return sum(_traversal(k) + _traversal(v) for k, v in value.items())
    return 1


def _strings(*sizes: int, factor: float = 1.0) -> int:
    return math.ceil(sum(sizes) * factor * _TRAVERSE)


def _list_alloc(factor: float, size: int) -> int:
    return int(size * factor) + 1 + 10


def _self_compare(items: Sequence[Any]) -> int:
    factor = 2.0
    if items and isinstance(items[0], str | bytes):
        factor += _TRAVERSE
    return _list_alloc(factor, len(items) * len(items))


def call_cost(name: str, args: Sequence[Any], result: Any) -> int:
    """The cost of one call of ``name`` (an operator such as ``_==_`` or a function)."""
    size = actual_size
    if name in _ONE:
        return 1
    if name in ("orValue", "or"):
        return 0  # cel-go evaluates these without a call step of their own
    if name in ("isSorted", "sum", "max", "min") or (
        name in ("indexOf", "lastIndexOf") and isinstance(args[0], LISTS)
    ):
        return _traversal(args[0])
    if name in ("indexOf", "lastIndexOf"):
        return _traversal(args[0])
    if name in ("url", "lowerAscii", "upperAscii", "substring", "trim"):
        return _strings(size(args[0]))
    if name in ("replace", "split"):
        return _strings(size(args[0]), factor=2)
    if name == "join":
        return _strings(size(result), factor=2)
    if name in ("find", "findAll", "matches"):
        return math.ceil((1 + size(args[0])) * _TRAVERSE) * math.ceil(size(args[1]) * _REGEX)
    if name in ("cidr", "isIP", "isCIDR", "quantity", "isQuantity", "semver", "isSemver"):
        return _strings(size(args[0]))
    if name == "ip":
        return 1 if not isinstance(args[0], str) else _strings(size(args[0]))
    if name == "ip.isCanonical":
        return _strings(size(args[0]), factor=2)
    if name in ("containsIP", "containsCIDR"):
        return _contains_cost(name, args)
    if name in ("slice", "lists.range", "reverse"):
        return _list_alloc(1, size(result))
    if name == "flatten":
        depth = args[1] if len(args) == 2 else 1
        return _list_alloc(float(depth), size(args[0]))
    if name in ("distinct", "sort"):
        return _self_compare(args[0])
    if name.startswith("sets."):
        factor = 2 if name == "sets.equivalent" else 1
        return 1 + int(actual_size(args[0]) * actual_size(args[1]) * factor)
    return _default(name, args)


def _contains_cost(name: str, args: Sequence[Any]) -> int:
    prefix, other = actual_size(args[0]), actual_size(args[1])
    cost = _strings(prefix + prefix)
    if name == "containsCIDR":
        cost += _strings(prefix) + 1
    if isinstance(args[1], str):
        cost += _strings(other)
    return cost


_EQUALITY = frozenset({"_==_", "_!=_"})
_ORDER = frozenset({"_<_", "_<=_", "_>_", "_>=_"})


def _default(name: str, args: Sequence[Any]) -> int:
    if name in ("startsWith", "endsWith", "strings.quote") or (
        name == "string" and isinstance(args[0], bytes)
    ):
        return _strings(actual_size(args[0]))
    if name == "@in":
        return actual_size(args[1]) if isinstance(args[1], LISTS) else 1
    if name in _EQUALITY:
        if getattr(args[0], "CEL_KIND", None) or type(args[0]).__name__ in ("Quantity", "SemVer"):
            return 1
        return _strings(min(actual_size(args[0]), actual_size(args[1])))
    if name in _ORDER and isinstance(args[0], str | bytes) and type(args[0]) is type(args[1]):
        return _strings(min(actual_size(args[0]), actual_size(args[1])))
    if name == "_+_" and isinstance(args[0], str | bytes):
        return _strings(actual_size(args[0]), actual_size(args[1]))
    if name == "contains" and isinstance(args[0], str):
        return _strings(actual_size(args[0])) * _strings(actual_size(args[1]))
    return 1
