"""The cel-go strings extension (version 2, as Kubernetes 1.36 enables it) and regex find.

Functions: ``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``,
``upperAscii``, ``replace``, ``split``, ``substring``, ``trim``, ``join``,
``strings.quote``, ``format`` (``modelplane.cel.format_ext``); Kubernetes'
``find`` and ``findAll`` (RE2).  Indices count code points, as Go's ``[]rune``
does; errors carry cel-go's messages.  ``reverse`` on strings is version 3 and
therefore absent.
"""

from __future__ import annotations

from typing import Any

from modelplane.cel.format_ext import FormatError, format_string
from modelplane.cel.overloads import Function, Overload
from modelplane.cel.regex import find, find_all
from modelplane.cel.types import DYN, INT, STRING, list_of
from modelplane.cel.values import LISTS, EvalError, no_overload

__all__ = ["STRINGS"]

# unicode.IsSpace: Latin-1 spaces plus the White_Space property.
_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)


def _str(name: str, *args: Any) -> None:
    if not all(type(a) is str for a in args):
        raise no_overload(name, *args)


def _int(name: str, value: Any, *args: Any) -> int:
    if type(value) is not int:
        raise no_overload(name, *args)
    return value


def _char_at(s: Any, i: Any) -> str:
    _str("charAt", s)
    index = _int("charAt", i, s, i)
    if index < 0 or index > len(s):
        raise EvalError(f"index out of range: {index}")
    return "" if index == len(s) else str(s[index])


def _index_of(s: Any, sub: Any, offset: Any = 0) -> int:
    _str("indexOf", s, sub)
    off = _int("indexOf", offset, s, sub, offset)
    if sub == "":
        return off
    if off < 0:
        raise EvalError(f"index out of range: {off}")
    if off >= len(s):
        return -1
    found: int = s.find(sub, off)
    return found


def _last_index_of(s: Any, sub: Any, *offset: Any) -> int:
    _str("lastIndexOf", s, sub)
    if not offset:
        if sub == "":
            return len(s)
        if len(s.encode()) < len(sub.encode()):
            return -1
        off = len(s) - 1
    else:
        off = _int("lastIndexOf", offset[0], s, sub, offset[0])
        if sub == "":
            return off
    if off < 0:
        raise EvalError(f"index out of range: {off}")
    if off >= len(s):
        return -1
    found: int = s.rfind(sub, 0, off + len(sub))
    return found


def _ascii(s: Any, upper: bool) -> str:
    _str("upperAscii" if upper else "lowerAscii", s)
    return "".join((c.upper() if upper else c.lower()) if c < "\x80" else c for c in s)


def _replace(s: Any, old: Any, new: Any, *n: Any) -> str:
    _str("replace", s, old, new)
    count = _int("replace", n[0], s, old, new, n[0]) if n else -1
    return str(s.replace(old, new, count))


def _split(s: Any, sep: Any, *n: Any) -> tuple[str, ...]:
    _str("split", s, sep)
    limit = _int("split", n[0], s, sep, n[0]) if n else -1
    if limit == 0:
        return ()
    if sep == "":
        chars = list(s)
        if 0 < limit < len(chars):
            chars = [*chars[: limit - 1], "".join(chars[limit - 1 :])]
        return tuple(chars)
    parts: list[str] = s.split(sep, limit - 1 if limit > 0 else -1)
    return tuple(parts)


def _substring(s: Any, start: Any, *end: Any) -> str:
    _str("substring", s)
    begin = _int("substring", start, s, start)
    if not end:
        if begin < 0 or begin > len(s):
            raise EvalError(f"index out of range: {begin}")
        return str(s[begin:])
    stop = _int("substring", end[0], s, start, end[0])
    if begin > stop:
        raise EvalError(f"invalid substring range. start: {begin}, end: {stop}")
    for bound in (begin, stop):
        if bound < 0 or bound > len(s):
            raise EvalError(f"index out of range: {bound}")
    return str(s[begin:stop])


def _trim(s: Any) -> str:
    _str("trim", s)
    start, end = 0, len(s)
    while start < end and s[start] in _SPACE:
        start += 1
    while end > start and s[end - 1] in _SPACE:
        end -= 1
    return str(s[start:end])


def _join(items: Any, sep: Any = "") -> str:
    if not isinstance(items, LISTS) or type(sep) is not str:
        raise no_overload("join", items, sep)
    for item in items:
        if type(item) is not str:
            raise EvalError(f"join: invalid input: {item}")
    return str(sep).join(items)


_QUOTES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def _quote(s: Any) -> str:
    _str("strings.quote", s)
    return '"' + "".join(_QUOTES.get(c, c) for c in s) + '"'


def _format(s: Any, args: Any) -> str:
    if type(s) is not str or not isinstance(args, LISTS):
        raise no_overload("format", s, args)
    try:
        return format_string(s, args)
    except FormatError as e:
        raise EvalError(str(e)) from None


def _find(s: Any, pattern: Any) -> str:
    _str("find", s, pattern)
    try:
        return find(s, pattern)
    except ValueError as e:
        raise EvalError(f"Illegal regex: {e}") from None


def _find_all(s: Any, pattern: Any, *n: Any) -> tuple[str, ...]:
    _str("findAll", s, pattern)
    limit = _int("findAll", n[0], s, pattern, n[0]) if n else -1
    try:
        return tuple(find_all(s, pattern, limit))
    except ValueError as e:
        raise EvalError(f"Illegal regex: {e}") from None


def _m(*params: Any, result: Any) -> Overload:
    return Overload(tuple(params), result, member=True)


_S, _L = STRING, list_of(STRING)

STRINGS: tuple[Function, ...] = (
    Function("charAt", (_m(_S, INT, result=_S),), _char_at),
    Function("indexOf", (_m(_S, _S, result=INT), _m(_S, _S, INT, result=INT)), _index_of),
    Function("lastIndexOf", (_m(_S, _S, result=INT), _m(_S, _S, INT, result=INT)), _last_index_of),
    Function("lowerAscii", (_m(_S, result=_S),), lambda s: _ascii(s, False)),
    Function("upperAscii", (_m(_S, result=_S),), lambda s: _ascii(s, True)),
    Function("replace", (_m(_S, _S, _S, result=_S), _m(_S, _S, _S, INT, result=_S)), _replace),
    Function("split", (_m(_S, _S, result=_L), _m(_S, _S, INT, result=_L)), _split),
    Function("substring", (_m(_S, INT, result=_S), _m(_S, INT, INT, result=_S)), _substring),
    Function("trim", (_m(_S, result=_S),), _trim),
    Function("join", (_m(_L, result=_S), _m(_L, _S, result=_S)), _join),
    Function("strings.quote", (Overload((_S,), _S),), _quote),
    Function("format", (_m(_S, list_of(DYN), result=_S),), _format),
    Function("find", (_m(_S, _S, result=_S),), _find),
    Function("findAll", (_m(_S, _S, result=_L), _m(_S, _S, INT, result=_L)), _find_all),
)
