"""The function library of the DRA selector environment: signatures and behaviour.

Each function has static overloads (used by the checker to reject unknown
functions and mistyped calls at compile time, like cel-go does) and one
runtime implementation that dispatches on runtime kinds and raises
``EvalError`` where cel-go returns an error.  Covered: CEL's standard
operators and functions (arithmetic, comparison, size, contains, startsWith,
endsWith, matches, int/uint/double/string conversions) and the Kubernetes
quantity and semver libraries.  The extension libraries live in their own
modules; ``modelplane.cel.registry`` joins them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from modelplane.cel.overloads import Function, Impl, Overload
from modelplane.cel.regex import compile_regex
from modelplane.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    INT,
    QUANTITY,
    SEMVER,
    STRING,
    UINT,
    Type,
    list_of,
    map_of,
)
from modelplane.cel.values import (
    INT64_MAX,
    INT64_MIN,
    LISTS,
    UINT64_MAX,
    EvalError,
    UInt,
    check_int,
    check_uint,
    is_number,
    no_overload,
    number_value,
)
from modelplane.quantity import Quantity
from modelplane.semver import SemVer

__all__ = ["CORE", "add_values", "format_double", "order_values"]


NUMERIC = (INT, UINT, DOUBLE)
ORDERED = (BOOL, INT, UINT, DOUBLE, STRING, BYTES)


def _both_int(a: object, b: object) -> bool:
    return type(a) is int and type(b) is int


def _add(a: Any, b: Any) -> Any:
    if _both_int(a, b):
        return check_int(a + b)
    if isinstance(a, UInt) and isinstance(b, UInt):
        return check_uint(a.value + b.value)
    if type(a) is float and type(b) is float:
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, bytes) and isinstance(b, bytes):
        return a + b
    if isinstance(a, LISTS) and isinstance(b, LISTS):
        return (*a, *b)
    raise no_overload("_+_", a, b)


def _sub(a: Any, b: Any) -> Any:
    if _both_int(a, b):
        return check_int(a - b)
    if isinstance(a, UInt) and isinstance(b, UInt):
        return check_uint(a.value - b.value)
    if type(a) is float and type(b) is float:
        return a - b
    raise no_overload("_-_", a, b)


def _mul(a: Any, b: Any) -> Any:
    if _both_int(a, b):
        return check_int(a * b)
    if isinstance(a, UInt) and isinstance(b, UInt):
        return check_uint(a.value * b.value)
    if type(a) is float and type(b) is float:
        return a * b
    raise no_overload("_*_", a, b)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _div(a: Any, b: Any) -> Any:
    if _both_int(a, b):
        if b == 0:
            raise EvalError("division by zero")
        return check_int(_trunc_div(a, b))
    if isinstance(a, UInt) and isinstance(b, UInt):
        if b.value == 0:
            raise EvalError("division by zero")
        return UInt(a.value // b.value)
    if type(a) is float and type(b) is float:
        if b == 0:
            if a == 0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    raise no_overload("_/_", a, b)


def _mod(a: Any, b: Any) -> Any:
    if _both_int(a, b):
        if b == 0:
            raise EvalError("modulus by zero")
        return check_int(a - b * _trunc_div(a, b))
    if isinstance(a, UInt) and isinstance(b, UInt):
        if b.value == 0:
            raise EvalError("modulus by zero")
        return UInt(a.value % b.value)
    raise no_overload("_%_", a, b)


def _neg(a: Any) -> Any:
    if type(a) is int:
        return check_int(-a)
    if type(a) is float:
        return -a
    raise no_overload("-_", a)


def _not(a: Any) -> Any:
    if type(a) is bool:
        return not a
    raise no_overload("!_", a)


def _ordering(name: str, a: Any, b: Any) -> int | None:
    """-1/0/1, or None when unordered (NaN); raises for kinds without an ordering."""
    if is_number(a) and is_number(b):
        x, y = number_value(a), number_value(b)
        if (isinstance(x, float) and math.isnan(x)) or (isinstance(y, float) and math.isnan(y)):
            return None
        return (x > y) - (x < y)
    if type(a) is type(b) and type(a) in (bool, str, bytes):
        order: int = (a > b) - (a < b)
        return order
    raise no_overload(name, a, b)


def order_values(name: str, a: Any, b: Any) -> int:
    """-1/0/1 for two comparable values (NaN compares as equal); raises otherwise."""
    if isinstance(a, Quantity | SemVer) and type(a) is type(b):
        return a.compare_to(b)
    return _ordering(name, a, b) or 0


def add_values(a: Any, b: Any) -> Any:
    """CEL ``a + b``."""
    return _add(a, b)


def _comparison(name: str, test: Callable[[int], bool]) -> Impl:
    def compare(a: Any, b: Any) -> bool:
        order = _ordering(name, a, b)
        return order is not None and test(order)

    return compare


def _size(a: Any) -> int:
    if isinstance(a, str | bytes | tuple | list | dict):
        return len(a)
    raise no_overload("size", a)


def _strings(name: str, test: Callable[[str, str], bool]) -> Impl:
    def call(a: Any, b: Any) -> bool:
        if type(a) is str and type(b) is str:
            return test(a, b)
        raise no_overload(name, a, b)

    return call


def _matches(a: Any, b: Any) -> bool:
    if type(a) is str and type(b) is str:
        try:
            return compile_regex(b).search(a) is not None
        except ValueError as e:
            raise EvalError(str(e)) from None
    raise no_overload("matches", a, b)


def _to_int(a: Any) -> int:
    if type(a) is int:
        return a
    if isinstance(a, UInt):
        return check_int(a.value)
    if type(a) is float:
        if math.isnan(a) or not -(2.0**63) < a < 2.0**63:
            raise EvalError("range error converting double to int")
        return int(a)
    if type(a) is str:
        try:
            return check_int(int(a, 10)) if re.fullmatch(r"[+-]?\d+", a) else int("x")
        except ValueError:
            raise EvalError(f"cannot convert {a!r} to int") from None
    raise no_overload("int", a)


def _to_uint(a: Any) -> UInt:
    if isinstance(a, UInt):
        return a
    if type(a) is int:
        if a < 0:
            raise EvalError("range error converting int to uint")
        return UInt(a)
    if type(a) is float:
        if math.isnan(a) or not -1.0 < a < 2.0**64:
            raise EvalError("range error converting double to uint")
        return UInt(int(a))
    if type(a) is str:
        if not re.fullmatch(r"\+?\d+", a) or int(a) > UINT64_MAX:
            raise EvalError(f"cannot convert {a!r} to uint")
        return UInt(int(a))
    raise no_overload("uint", a)


def _to_double(a: Any) -> float:
    if type(a) is float:
        return a
    if type(a) is int:
        return float(a)
    if isinstance(a, UInt):
        return float(a.value)
    if type(a) is str:
        try:
            return float(a)
        except ValueError:
            raise EvalError(f"cannot convert {a!r} to double") from None
    raise no_overload("double", a)


def format_double(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 64)``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digit_tuple)
    point = len(digits) + exponent  # position of the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _to_string(a: Any) -> str:
    if type(a) is str:
        return a
    if type(a) is bool:
        return "true" if a else "false"
    if type(a) is int:
        return str(a)
    if isinstance(a, UInt):
        return str(a.value)
    if type(a) is float:
        return format_double(a)
    if type(a) is bytes:
        try:
            return a.decode("utf-8")
        except UnicodeDecodeError:
            raise EvalError("invalid UTF-8 in bytes, cannot convert to string") from None
    raise no_overload("string", a)


def _to_bytes(a: Any) -> bytes:
    if type(a) is bytes:
        return a
    if type(a) is str:
        return a.encode("utf-8")
    raise no_overload("bytes", a)


def _quantity(a: Any) -> Quantity:
    if type(a) is not str:
        raise no_overload("quantity", a)
    try:
        return Quantity.parse(a)
    except ValueError as e:
        raise EvalError(str(e)) from None


def _is_quantity(a: Any) -> bool:
    if type(a) is not str:
        raise no_overload("isQuantity", a)
    return Quantity.is_valid(a)


def _semver(a: Any, normalize: Any = False) -> SemVer:
    if type(a) is not str or type(normalize) is not bool:
        raise no_overload("semver", a)
    try:
        return SemVer.parse(a, normalize)
    except ValueError as e:
        raise EvalError(str(e)) from None


def _is_semver(a: Any, normalize: Any = False) -> bool:
    if type(a) is not str or type(normalize) is not bool:
        raise no_overload("isSemver", a)
    return SemVer.is_valid(a, normalize)


def _library_compare(name: str, convert: Callable[[int], Any]) -> Impl:
    def call(a: Any, b: Any) -> Any:
        if isinstance(a, Quantity) and isinstance(b, Quantity):
            return convert(a.compare_to(b))
        if isinstance(a, SemVer) and isinstance(b, SemVer):
            return convert(a.compare_to(b))
        raise no_overload(name, a, b)

    return call


def _semver_part(name: str) -> Impl:
    def call(a: Any) -> int:
        if not isinstance(a, SemVer):
            raise no_overload(name, a)
        value: int = getattr(a, name)
        return value if value <= INT64_MAX else value - 2**64

    return call


def _quantity_method(name: str, body: Callable[[Quantity], Any]) -> Impl:
    def call(a: Any) -> Any:
        if not isinstance(a, Quantity):
            raise no_overload(name, a)
        return body(a)

    return call


def _as_integer(q: Quantity) -> int:
    try:
        return q.as_integer()
    except ValueError as e:
        raise EvalError(str(e)) from None


def _quantity_arith(name: str, sign: int) -> Impl:
    def call(a: Any, b: Any) -> Quantity:
        if not isinstance(a, Quantity):
            raise no_overload(name, a, b)
        if isinstance(b, Quantity):
            other, other_int = b.value, b.is_integer
        elif type(b) is int:
            other, other_int = Fraction(b), True
        else:
            raise no_overload(name, a, b)
        value = a.value + sign * other
        fits = INT64_MIN <= value <= INT64_MAX
        return Quantity.from_value(value, a.is_integer and other_int and fits)

    return call


def _sign(a: Any) -> int:
    if not isinstance(a, Quantity):
        raise no_overload("sign", a)
    return a.sign()


def _fn(name: str, impl: Impl, *overloads: Overload) -> Function:
    return Function(name, overloads, impl)


def _binary(params: tuple[Type, ...], result: Type) -> Overload:
    return Overload(params, result)


def _member(params: tuple[Type, ...], result: Type) -> Overload:
    return Overload(params, result, member=True)


_LIST = list_of(DYN)
_MAP = map_of(DYN, DYN)
_CROSS = tuple((a, b) for a in NUMERIC for b in NUMERIC)
_COMPARE = tuple(Overload((t, t), BOOL) for t in ORDERED) + tuple(
    Overload(pair, BOOL) for pair in _CROSS if pair[0] != pair[1]
)


def _comparison_fn(name: str, test: Callable[[int], bool]) -> Function:
    return Function(name, _COMPARE, _comparison(name, test))


_SIZED = (STRING, BYTES, _LIST, _MAP)

CORE: tuple[Function, ...] = (
    _fn(
        "_+_",
        _add,
        *(Overload((t, t), t) for t in (INT, UINT, DOUBLE, STRING, BYTES)),
        Overload((_LIST, _LIST), _LIST),
    ),
    _fn("_-_", _sub, *(Overload((t, t), t) for t in NUMERIC)),
    _fn("_*_", _mul, *(Overload((t, t), t) for t in NUMERIC)),
    _fn("_/_", _div, *(Overload((t, t), t) for t in NUMERIC)),
    _fn("_%_", _mod, *(Overload((t, t), t) for t in (INT, UINT))),
    _fn("-_", _neg, Overload((INT,), INT), Overload((DOUBLE,), DOUBLE)),
    _fn("!_", _not, Overload((BOOL,), BOOL)),
    _comparison_fn("_<_", lambda o: o < 0),
    _comparison_fn("_<=_", lambda o: o <= 0),
    _comparison_fn("_>_", lambda o: o > 0),
    _comparison_fn("_>=_", lambda o: o >= 0),
    _fn(
        "size",
        _size,
        *(Overload((t,), INT) for t in _SIZED),
        *(_member((t,), INT) for t in _SIZED),
    ),
    _fn("contains", _strings("contains", lambda a, b: b in a), _member((STRING, STRING), BOOL)),
    _fn(
        "startsWith",
        _strings("startsWith", lambda a, b: a.startswith(b)),
        _member((STRING, STRING), BOOL),
    ),
    _fn(
        "endsWith",
        _strings("endsWith", lambda a, b: a.endswith(b)),
        _member((STRING, STRING), BOOL),
    ),
    _fn("matches", _matches, _binary((STRING, STRING), BOOL), _member((STRING, STRING), BOOL)),
    _fn("int", _to_int, *(Overload((t,), INT) for t in (INT, UINT, DOUBLE, STRING))),
    _fn("uint", _to_uint, *(Overload((t,), UINT) for t in (INT, UINT, DOUBLE, STRING))),
    _fn("double", _to_double, *(Overload((t,), DOUBLE) for t in (INT, UINT, DOUBLE, STRING))),
    _fn(
        "string",
        _to_string,
        *(Overload((t,), STRING) for t in (STRING, BOOL, INT, UINT, DOUBLE, BYTES)),
    ),
    _fn("bytes", _to_bytes, Overload((BYTES,), BYTES), Overload((STRING,), BYTES)),
    _fn("quantity", _quantity, Overload((STRING,), QUANTITY)),
    _fn("isQuantity", _is_quantity, Overload((STRING,), BOOL)),
    _fn("sign", _sign, Overload((QUANTITY,), INT)),
    _fn("semver", _semver, Overload((STRING,), SEMVER), Overload((STRING, BOOL), SEMVER)),
    _fn("isSemver", _is_semver, Overload((STRING,), BOOL), Overload((STRING, BOOL), BOOL)),
    _fn(
        "isGreaterThan",
        _library_compare("isGreaterThan", lambda o: o > 0),
        _member((QUANTITY, QUANTITY), BOOL),
        _member((SEMVER, SEMVER), BOOL),
    ),
    _fn(
        "isLessThan",
        _library_compare("isLessThan", lambda o: o < 0),
        _member((QUANTITY, QUANTITY), BOOL),
        _member((SEMVER, SEMVER), BOOL),
    ),
    _fn(
        "compareTo",
        _library_compare("compareTo", lambda o: o),
        _member((QUANTITY, QUANTITY), INT),
        _member((SEMVER, SEMVER), INT),
    ),
    _fn("major", _semver_part("major"), _member((SEMVER,), INT)),
    _fn("minor", _semver_part("minor"), _member((SEMVER,), INT)),
    _fn("patch", _semver_part("patch"), _member((SEMVER,), INT)),
    _fn(
        "asApproximateFloat",
        _quantity_method("asApproximateFloat", Quantity.as_approximate_float),
        _member((QUANTITY,), DOUBLE),
    ),
    _fn(
        "asInteger",
        _quantity_method("asInteger", _as_integer),
        _member((QUANTITY,), INT),
    ),
    _fn(
        "isInteger",
        _quantity_method("isInteger", lambda q: q.is_integer),
        _member((QUANTITY,), BOOL),
    ),
    _fn(
        "add",
        _quantity_arith("add", 1),
        _member((QUANTITY, QUANTITY), QUANTITY),
        _member((QUANTITY, INT), QUANTITY),
    ),
    _fn(
        "sub",
        _quantity_arith("sub", -1),
        _member((QUANTITY, QUANTITY), QUANTITY),
        _member((QUANTITY, INT), QUANTITY),
    ),
)
