"""CEL optional types: the ``.?`` / ``[?]`` syntax and the optional library.

cel-python's grammar has no optional syntax, so ``rewrite`` turns it into
calls of reserved internal functions before parsing, outside string and
bytes literals only: ``a.?f`` becomes ``a.__opt_select__("f")`` and
``a[?k]`` becomes ``a.__opt_index__(k)``; an optional list element
``[?e]`` becomes ``__opt_elem__(e)`` and an optional map entry ``{?k: v}``
becomes ``__opt_key__(k): v``.  The compiler gives these their cel-go
meaning.  A user-written reserved name is refused (``ReservedNameError``),
so no expression can reach the internal functions directly.

The library: ``optional.of``, ``optional.none``, ``optional.ofNonZeroValue``,
``hasValue``, ``value``, ``orValue``, ``or``, and lists' ``first``/``last``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from modelplane.cel.overloads import Function, Overload
from modelplane.cel.types import BOOL, DYN, Type, list_of, optional_of, unify
from modelplane.cel.values import LISTS, NONE, EvalError, Opt, UInt, no_overload

__all__ = ["OPTIONALS", "RESERVED", "ReservedNameError", "is_zero", "rewrite"]

RESERVED = ("__opt_select__", "__opt_index__", "__opt_elem__", "__opt_key__")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERAND_END = re.compile(r"[A-Za-z0-9_)\]}\"'.]")


class ReservedNameError(ValueError):
    """The expression uses a name reserved for the optional-syntax rewrite."""


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal whose opening quote is at ``start``."""
    quote = text[start]
    raw = start > 0 and text[start - 1] in "rR" and not _prefix_is_ident(text, start - 1)
    triple = text[start : start + 3] == quote * 3
    delim = quote * 3 if triple else quote
    i = start + len(delim)
    while i < len(text):
        if text[i] == "\\" and not raw:
            i += 2
            continue
        if text.startswith(delim, i):
            return i + len(delim)
        i += 1
    return len(text)


def _prefix_is_ident(text: str, i: int) -> bool:
    # "r" of r"..." or "br"/"rb" prefixes: the char before must not continue an identifier.
    j = i - 1
    if j >= 0 and text[j] in "bB":
        j -= 1
    return j >= 0 and (text[j].isalnum() or text[j] == "_")


def rewrite(text: str) -> str:
    """The expression with optional syntax replaced by internal calls."""
    out: list[str] = []
    closers: list[str] = []  # what each open bracket closes with
    i = 0
    last = ""  # last significant character emitted outside literals
    while i < len(text):
        c = text[i]
        if c in "\"'":
            end = _string_end(text, i)
            out.append(text[i:end])
            last = c
            i = end
            continue
        ident = _IDENT.match(text, i)
        if ident is not None:
            if ident.group(0) in RESERVED:
                raise ReservedNameError(f"undeclared reference to '{ident.group(0)}'")
            out.append(ident.group(0))
            last = ident.group(0)[-1]
            i = ident.end()
            continue
        if c == "." and text.startswith(".?", i):
            name = _IDENT.match(text, _skip_space(text, i + 2))
            if name is not None:
                out.append(f'.__opt_select__("{name.group(0)}")')
                last = ")"
                i = name.end()
                continue
        if c in "[{(":
            j = _skip_space(text, i + 1)
            optional = j < len(text) and text[j] == "?"
            if c == "[" and optional and _OPERAND_END.match(last or " "):
                out.append(".__opt_index__(")
                closers.append(")")
                i = j + 1
                last = "("
                continue
            closers.append({"[": "]", "{": "}", "(": ")"}[c])
            out.append(c)
            last = c
            i += 1
            if optional and c in "[{":
                i = _optional_entry(text, j, out, c)
            continue
        if c in "]})":
            out.append(closers.pop() if closers else c)
            last = c
            i += 1
            continue
        if c == "," and closers and closers[-1] in "]}":
            out.append(c)
            i += 1
            j = _skip_space(text, i)
            if j < len(text) and text[j] == "?":
                i = _optional_entry(text, j, out, "[" if closers[-1] == "]" else "{")
            last = ","
            continue
        out.append(c)
        if not c.isspace():
            last = c
        i += 1
    return "".join(out)


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _optional_entry(text: str, question: int, out: list[str], opener: str) -> int:
    """Rewrite ``?e`` (list) or ``?k: v`` (map) starting at the question mark."""
    end = _entry_end(text, question + 1, ":" if opener == "{" else ",]")
    name = "__opt_elem__" if opener == "[" else "__opt_key__"
    out.append(f"{name}({rewrite(text[question + 1 : end])})")
    return end


def _entry_end(text: str, i: int, stops: str) -> int:
    depth = 0
    while i < len(text):
        c = text[i]
        if c in "\"'":
            i = _string_end(text, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and c in stops:
            return i
        i += 1
    return i


def is_zero(value: Any) -> bool:
    """Whether a value is its type's zero value (``optional.ofNonZeroValue``)."""
    if value is None or value is False:
        return True
    if isinstance(value, UInt):
        return value.value == 0
    if isinstance(value, int | float | str | bytes) and not isinstance(value, bool):
        return not value
    if isinstance(value, tuple | list | dict):
        return len(value) == 0
    return False


def _opt(name: str, value: Any, *rest: Any) -> Opt:
    if not isinstance(value, Opt):
        raise no_overload(name, value, *rest)
    return value


def _value(o: Any) -> Any:
    if not _opt("value", o).present:
        raise EvalError("optional.none() dereference")
    return o.value


def _or_value(o: Any, other: Any) -> Any:
    return o.value if _opt("orValue", o, other).present else other


def _or(o: Any, other: Any) -> Any:
    if _opt("or", o, other).present:
        return o
    return _opt("or", other, o)


def _end(name: str, pick: int) -> Any:
    def run(items: Any) -> Opt:
        if not isinstance(items, LISTS):
            raise no_overload(name, items)
        return Opt(items[pick]) if items else Opt(NONE)

    return run


def _inner(args: Sequence[Type]) -> Type:
    first = args[0]
    return first.params[0] if first.name == "optional_type" else DYN


def _wrap_first(args: Sequence[Type]) -> Type:
    return optional_of(args[0])


def _elem_optional(args: Sequence[Type]) -> Type:
    first = args[0]
    return optional_of(first.params[0] if first.name == "list" else DYN)


def _inner_and_arg(args: Sequence[Type]) -> bool:
    return unify(_inner(args), args[1])


_OPT = optional_of(DYN)

OPTIONALS: tuple[Function, ...] = (
    Function("optional.of", (Overload((DYN,), _OPT, result_of=_wrap_first),), lambda v: Opt(v)),
    Function("optional.none", (Overload((), _OPT),), lambda: Opt(NONE)),
    Function(
        "optional.ofNonZeroValue",
        (Overload((DYN,), _OPT, result_of=_wrap_first),),
        lambda v: Opt(NONE if is_zero(v) else v),
    ),
    Function(
        "hasValue", (Overload((_OPT,), BOOL, member=True),), lambda o: _opt("hasValue", o).present
    ),
    Function("value", (Overload((_OPT,), DYN, member=True, result_of=_inner),), _value),
    Function(
        "orValue",
        (Overload((_OPT, DYN), DYN, True, result_of=_inner, check=_inner_and_arg),),
        _or_value,
    ),
    Function("or", (Overload((_OPT, _OPT), _OPT, member=True, result_of=lambda a: a[0]),), _or),
    Function(
        "first",
        (Overload((list_of(DYN),), _OPT, member=True, result_of=_elem_optional),),
        _end("first", 0),
    ),
    Function(
        "last",
        (Overload((list_of(DYN),), _OPT, member=True, result_of=_elem_optional),),
        _end("last", -1),
    ),
)
