"""Runtime values and their CEL semantics for the selector evaluator.

CEL values are plain Python values: bool, int (CEL int, 64-bit checked), UInt,
float, str, bytes, None (null), tuple or list (CEL list; a list comes from JSON
data), dict (map), plus the Kubernetes
library types ``Quantity`` and ``SemVer`` and the selector's ``DomainMap``.
A failed evaluation step raises ``EvalError``; the evaluator turns it into a
non-matching verdict.  Equality is CEL's heterogeneous equality as cel-go
implements it (numbers compare across int/uint/double; a quantity or version
compared with another kind is an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplane.quantity import Quantity
from modelplane.semver import SemVer

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "LISTS",
    "NONE",
    "UINT64_MAX",
    "CelType",
    "DomainMap",
    "EvalError",
    "Opt",
    "UInt",
    "check_int",
    "check_uint",
    "equal",
    "is_number",
    "kind_name",
    "no_overload",
    "number_value",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
LISTS = (tuple, list)
"""The Python types of a CEL list value (``isinstance(v, LISTS)``)."""


class EvalError(Exception):
    """A CEL runtime error; the message is user-facing."""


@dataclass(frozen=True, slots=True)
class UInt:
    """A CEL unsigned integer."""

    value: int


@dataclass(frozen=True, slots=True)
class Opt:
    """A CEL optional value; ``value is NONE`` when it is empty."""

    value: Any

    @property
    def present(self) -> bool:
        return self.value is not NONE


class _None:
    def __repr__(self) -> str:
        return "optional.none()"


NONE: Any = _None()


@dataclass(frozen=True, slots=True)
class CelType:
    """A CEL type value such as ``int`` or ``net.IP`` (what ``type(x)`` returns)."""

    name: str


class DomainMap(dict[str, Any]):
    """``device.attributes`` / ``device.capacity``: indexing an absent domain yields {}.

    ``in`` still reports true presence, as in Kubernetes.
    """


def kind_name(value: object) -> str:
    if value is None:
        return "null_type"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, UInt):
        return "uint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, LISTS):
        return "list"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, Quantity):
        return "kubernetes.Quantity"
    if isinstance(value, SemVer):
        return "kubernetes.Semver"
    if isinstance(value, Opt):
        return "optional_type"
    if isinstance(value, CelType):
        return "type"
    kind = getattr(value, "CEL_KIND", None)
    if kind is not None:
        return str(kind)
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def no_overload(name: str, *args: object) -> EvalError:
    kinds = ", ".join(kind_name(a) for a in args)
    return EvalError(f"no such overload: {name}({kinds})")


def is_number(value: object) -> bool:
    return isinstance(value, int | float | UInt) and not isinstance(value, bool)


def number_value(value: object) -> int | float:
    if isinstance(value, UInt):
        return value.value
    assert isinstance(value, int | float)
    return value


def check_int(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise EvalError("integer overflow")
    return value


def check_uint(value: int) -> UInt:
    if not 0 <= value <= UINT64_MAX:
        raise EvalError("unsigned integer overflow")
    return UInt(value)


def equal(left: object, right: object) -> bool:
    """CEL ``==``; raises ``EvalError`` where cel-go returns an error."""
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, Quantity | SemVer):
        if type(left) is not type(right):
            raise no_overload("_==_", left, right)
        return left == right
    if is_number(left):
        return is_number(right) and number_value(left) == number_value(right)
    if isinstance(left, bool):
        return isinstance(right, bool) and left == right
    if isinstance(left, str | bytes):
        return type(left) is type(right) and left == right
    if isinstance(left, LISTS):
        if not isinstance(right, LISTS) or len(left) != len(right):
            return False
        return all(equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, CelType):
        return left == right
    if isinstance(left, Opt):
        if not isinstance(right, Opt) or left.present != right.present:
            return False
        return not left.present or equal(left.value, right.value)
    kind = getattr(left, "CEL_KIND", None)
    if kind is not None:
        return getattr(right, "CEL_KIND", None) == kind and left == right
    if isinstance(left, dict):
        if not isinstance(right, dict) or len(left) != len(right):
            return False
        for key, value in left.items():
            other = _map_find(right, key)
            if other is _MISSING or not equal(value, other):
                return False
        return True
    return False


_MISSING = object()


def _map_find(mapping: dict[Any, Any], key: object) -> object:
    for candidate, value in mapping.items():
        if _key_equal(candidate, key):
            return value
    return _MISSING


def _key_equal(a: object, b: object) -> bool:
    if is_number(a) and is_number(b):
        return number_value(a) == number_value(b)
    return type(a) is type(b) and a == b
