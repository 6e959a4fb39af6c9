"""The strings extension's ``format``, as cel-go v0.26 has it at strings version 2.

``format_string(text, args)`` substitutes ``args`` (a CEL list) into ``text`` at run
time; ``check_format(text, args)`` is the compile-time check cel-go applies when the
format string is a literal and the arguments a list literal (each ``FormatArg`` is
an argument's static type name and, for a nested list or map literal, its elements).
Both raise ``FormatError`` with cel-go's message.

Clauses: ``%s`` (strings, bools, bytes, numbers, null, types, and lists and maps of
those, printed as CEL literals), ``%d`` (ints), ``%f`` with an optional precision
(``%.3f``; doubles, or the strings "NaN", "Infinity" and "-Infinity"), ``%e``,
``%b`` (ints and bools), ``%x``/``%X`` (ints, strings, bytes), ``%o`` and ``%%``.
Facts from cel-go's legacy formatter (Kubernetes uses strings version 2), which the
differential test pins: ``%f`` and ``%e`` print through Go's en_US number printer,
so ``%f`` groups thousands with commas and prints infinity as ``∞``, and ``%e``
prints ``1.234568`` TIMES ``10⁰³`` (U+00D7; six digits whatever the precision
asked: the precision becomes a width of 6, visible only on NaN and infinities); a
negative zero loses its sign there. ``%s`` prints a double as Go's ``%g`` does and a double inside a
list or map with six decimals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.cel.functions import format_double
from modelplane.cel.values import LISTS, CelType, UInt, kind_name

__all__ = ["FormatArg", "FormatError", "check_format", "format_string"]

_INT64_MAX = 2**63 - 1
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_TIMES = "\u00d7"
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}

# The kinds (static type names) each clause accepts at compile time.
_ACCEPTS = {
    "s": frozenset(
        {"list", "map", "int", "uint", "double", "bool", "string", "bytes", "type", "null_type"}
    ),
    "d": frozenset({"int", "uint"}),
    "f": frozenset({"double", "string"}),
    "e": frozenset({"double", "string"}),
    "b": frozenset({"int", "uint", "bool"}),
    "x": frozenset({"int", "uint", "string", "bytes"}),
    "o": frozenset({"int", "uint"}),
}
_WRONG = {
    "s": "string clause can only be used on strings, bools, bytes, ints, doubles, maps, "
    "lists, types, durations, and timestamps",
    "d": "decimal clause can only be used on integers",
    "f": "fixed-point clause can only be used on doubles",
    "e": "scientific clause can only be used on doubles",
    "b": "only integers and bools can be formatted as binary",
    "x": "only integers, byte buffers, and strings can be formatted as hex",
    "o": "octal clause can only be used on integers",
}


class FormatError(Exception):
    """The format string or an argument is not valid; the message is cel-go's."""


@dataclass(frozen=True, slots=True)
class FormatArg:
    """An argument as the compiler sees it: its static type name and literal elements."""

    kind: str
    elements: tuple[FormatArg, ...] = ()


def _wrong(verb: str, kind: str) -> FormatError:
    return FormatError(f"{_WRONG[verb.lower()]}, was given {kind}")


def _clause(text: str, start: int) -> tuple[str, int | None, int]:
    """The verb and precision of the clause after the ``%`` at ``start - 1``, and its end."""
    i, precision = start, None
    if text[i] == ".":
        i += 1
        digits = ""
        while True:
            if i >= len(text):
                raise ValueError(
                    "error while parsing precision: could not find end of precision specifier"
                )
            if not "0" <= text[i] <= "9":
                break
            digits += text[i]
            i += 1
        if not digits or int(digits) > _INT64_MAX:
            why = "invalid syntax" if not digits else "value out of range"
            raise ValueError(
                "error while parsing precision: error while converting precision to integer: "
                f'strconv.Atoi: parsing "{digits}": {why}'
            )
        precision = int(digits)
    verb = text[i]
    if verb not in "sdfebxXo":
        shown = chr(verb.encode()[0])  # Go reads one byte as the verb
        raise ValueError(f'unrecognized formatting clause "{shown}"')
    return verb, precision, i + 1


def _interpolate(
    text: str, count: int, clause: Callable[[str, int | None, int], str], static: bool
) -> tuple[str, int]:
    """``text`` with each clause replaced by ``clause(verb, precision, index)``; how many."""
    out: list[str] = []
    i = index = 0
    while i < len(text):
        char = text[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        if text[i + 1 : i + 2] == "%":
            out.append("%")
            i += 2
            continue
        # cel-go fetches the argument first at run time; its checker does not.
        if not static and index >= count:
            raise FormatError(f"index {index} out of range")
        if i + 1 >= len(text):
            raise FormatError("unexpected end of string")
        if index >= count:
            raise FormatError(f"index {index} out of range")
        try:
            verb, precision, i = _clause(text, i + 1)
        except ValueError as e:
            raise FormatError(f"could not parse formatting clause: {e}") from None
        try:
            out.append(clause(verb, precision, index))
        except FormatError as e:
            raise FormatError(f"error during formatting: {e}") from None
        index += 1
    return "".join(out), index


def format_string(text: str, args: Sequence[Any]) -> str:
    """``text.format(args)`` as cel-go evaluates it."""
    return _interpolate(text, len(args), lambda v, p, i: _format(v, p, args[i]), False)[0]


def check_format(text: str, args: Sequence[FormatArg]) -> None:
    """The compile-time check of a literal format string against a list literal."""

    def check(verb: str, _: int | None, index: int) -> str:
        bad = _unfit(verb.lower(), args[index])
        if bad is not None:
            raise _wrong(verb, bad)
        return ""

    _, used = _interpolate(text, len(args), check, True)
    if len(args) > used:
        raise FormatError(
            f"too many arguments supplied to string.format (expected {used}, got {len(args)})"
        )


def _unfit(verb: str, arg: FormatArg) -> str | None:
    """The type name that ``verb`` cannot format, if any (``dyn`` passes, ``any`` does not)."""
    if arg.kind == "dyn":
        return None
    if arg.kind not in _ACCEPTS[verb]:
        return "google.protobuf.Any" if arg.kind == "any" else arg.kind
    if verb == "s":
        for element in arg.elements:
            bad = _unfit("s", element)
            if bad is not None:
                return bad
    return None


# ----- run time ------------------------------------------------------------------


def _format(verb: str, precision: int | None, value: Any) -> str:
    kind = type(value)
    if verb == "s":
        return _as_string(value)
    if verb == "d":
        if kind is int or kind is UInt:
            return str(_int(value))
    elif verb in "fe":
        number = _double(value)
        if number is not None:
            return (
                _fixed(number, 6 if precision is None else precision)
                if verb == "f"
                else _sci(number)
            )
    elif verb == "b":
        if kind is bool:
            return "1" if value else "0"
        if kind is int or kind is UInt:
            return format(_int(value), "b")
    elif verb in "xX":
        if kind is str or kind is bytes:
            raw: bytes = value.encode() if kind is str else value
            return raw.hex().upper() if verb == "X" else raw.hex()
        if kind is int or kind is UInt:
            return format(_int(value), verb)
    elif kind is int or kind is UInt:  # "o"
        return format(_int(value), "o")
    raise _wrong(verb, kind_name(value))


def _int(value: int | UInt) -> int:
    return value.value if isinstance(value, UInt) else value


def _double(value: Any) -> float | None:
    if type(value) is float:
        return value
    if type(value) is str and value in _FLOAT_WORDS:
        return _FLOAT_WORDS[value]
    return None


def _fixed(number: float, precision: int) -> str:
    """Go's en_US printer: grouped thousands, ``∞``, and no sign on a negative zero."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    return f"{number + 0.0 if number == 0 else number:,.{precision}f}"


def _sci(number: float) -> str:
    """Go's en_US printer on ``%6e``: ``d.dddddd`` TIMES ``10ⁿⁿ``; NaN, infinities padded."""
    if math.isnan(number):
        return "NaN".rjust(6)
    if math.isinf(number):
        return ("∞" if number > 0 else "-∞").rjust(6)
    mantissa, exponent = f"{number + 0.0 if number == 0 else number:.6e}".split("e")
    power = int(exponent)
    digits = f"{abs(power):02d}".translate(_SUPERSCRIPTS)
    return f"{mantissa}{_TIMES}10{'⁻' if power < 0 else ''}{digits}"


def _go_quote(text: str) -> str:
    """Go's ``%q`` of a string."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(
            'could not convert argument "invalid UTF-8 in bytes, cannot convert to string" '
            "to string"
        ) from None


def _as_string(value: Any) -> str:
    """``%s``: a scalar as CEL's string conversion gives it; lists and maps as literals."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is UInt:
        return str(_int(value))
    if kind is float:
        return format_double(value)
    if kind is bytes:
        return _utf8(value)
    if value is None:
        return "null"
    if kind is CelType:
        return str(value.name)
    if isinstance(value, LISTS):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return _map(value)
    raise _wrong("s", kind_name(value))


def _literal(value: Any) -> str:
    """A list element or map value, written as a CEL literal."""
    kind = type(value)
    if kind is str:
        return _go_quote(value)
    if kind is bytes:
        return "b" + _go_quote(_utf8(value))
    if kind is float:
        if math.isnan(value) or math.isinf(value):
            return f'"{format_double(value)}"'
        return f"{value:.6f}"
    if kind in (bool, int, UInt, CelType) or value is None:
        return _as_string(value)
    if isinstance(value, (*LISTS, dict)):
        return _as_string(value)
    raise FormatError(f"no formatting function for {kind_name(value)}")


def _map(value: dict[Any, Any]) -> str:
    pairs = []
    for key, item in value.items():
        kind = type(key)
        if kind is str:
            shown = _go_quote(key)
        elif kind in (bool, int, UInt):
            shown = _as_string(key)
        else:
            raise FormatError(f"no formatting function for map key of type {kind_name(key)}")
        pairs.append((shown, _literal(item)))
    pairs.sort(key=lambda pair: pair[0])
    return "{" + ", ".join(f"{k}:{v}" for k, v in pairs) + "}"
