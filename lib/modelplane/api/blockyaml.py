"""A reader for plain block-style YAML: exactly what ``yaml.safe_load`` gives, or nothing.

Most manifests (and everything ``yaml.safe_dump`` writes for plain data) use a
small part of YAML: block mappings and sequences indented with spaces, keys of
letters, digits and ``_./-``, single-line plain scalars, single-line quoted
scalars without escapes, ``{}`` and ``[]``, comment lines. ``read(lines)`` reads
one document of that shape in pure Python several times faster than PyYAML's
libyaml binding, which builds a node and two marks per scalar.

Anything else (flow collections with content, block scalars, anchors, tags,
multi-line scalars, tabs, non-ASCII text, timestamps, an
indentation PyYAML would reject, ...) raises ``UnsupportedError`` before any value
is returned, and the caller reads the document with PyYAML, which also reports
malformed documents with its own messages and line numbers. Plain scalars are
resolved by PyYAML's own resolver and safe constructor (once per distinct text),
so ``12``, ``yes``, ``~`` and ``.inf`` become what ``safe_load`` makes of them.

Guarantees: ``read`` returns a value equal to ``yaml.safe_load`` of the same
lines, types included, or raises ``UnsupportedError``; it never raises anything else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

__all__ = ["UnsupportedError", "read", "readable"]


class UnsupportedError(Exception):
    """The document uses more of YAML than this reader handles; read it with PyYAML."""


_KEY = r"(?P<key>[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}):(?: +|$)"
_PLAIN_START = r"[^\s\-?:,\[\]{}#&*!|>'\"%@`]|-[A-Za-z0-9_.]"
_PLAIN_REST = r"(?:[^\s:#]++|:(?=\S)|#| ++(?=[^\s#]))*+"
"""After its first character a plain scalar may hold anything printable but ": ",
a ":" at its end, and " #" (where a comment starts)."""
_VALUE = (
    f"(?:(?P<plain>(?:{_PLAIN_START}){_PLAIN_REST})"
    r"|'(?P<single>(?:[^']|'')*)'"
    r'|"(?P<double>[^"\\]*)"'
    r"|(?P<flow>\{\}|\[\]))? *(?:(?<= )#.*)?$"
)
_LINE = re.compile(f"(?P<indent> *)(?P<dash>- +)?(?:{_KEY})?{_VALUE}")
"""A line: its indentation, a sequence item's dash, a key, a value (each but the first optional)."""
_SIMPLE = re.compile(
    r"( *)(- )?([A-Za-z0-9_][A-Za-z0-9_./-]{0,200}):(?: ([A-Za-z0-9_./][A-Za-z0-9_./-]*))?$"
)
"""The most common line, a key with a plain value of name characters or none, read
as ``_LINE`` reads it but several times faster."""
_READABLE = bytes(range(0x20, 0x7F)) + b"\n"

# Token kinds: a key at a column (with its value, or _OPEN when a block may follow),
# a sequence item's dash at a column, a scalar after a dash.
_KEYED, _ITEM, _SCALAR = 0, 1, 2
_OPEN = object()
"""A key with nothing after its colon: a nested block follows, or the value is null."""

_STR = "tag:yaml.org,2002:str"
_SIMPLE_TAGS = frozenset(
    {
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
    }
)
_PLAIN_MAX = 65536
_PLAIN: dict[str, Any] = {}
"""Plain scalar text -> its value (str, int, float, bool or None: immutable, so shared)."""
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


def readable(text: str) -> bool:
    """Whether ``text`` has only printable ASCII and newlines (no tabs, no ``\\r``):
    then its ``splitlines()`` is ``split("\\n")`` and this reader may try it."""
    return text.isascii() and not text.encode("ascii").translate(None, _READABLE)


def _plain(text: str) -> Any:
    """A plain scalar's value, as PyYAML's resolver and safe constructor make it."""
    try:
        return _PLAIN[text]
    except KeyError:
        pass
    tag = _RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag == _STR:
        value: Any = text
    elif tag in _SIMPLE_TAGS:
        value = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, ScalarNode(tag, text))
    else:  # timestamps and the like: built anew per use by PyYAML, left to it
        raise UnsupportedError
    if len(_PLAIN) >= _PLAIN_MAX:
        _PLAIN.clear()
    _PLAIN[text] = value
    return value


_MISSING = object()


def _value(last: str | None, single: str | None, double: str | None, flow: str | None) -> Any:
    """A quoted scalar's or an empty flow collection's value, by ``_LINE``'s last group."""
    if last == "single":
        assert single is not None
        return single.replace("''", "'")
    if last == "double":
        return double
    if last == "flow":
        return {} if flow == "{}" else []
    raise UnsupportedError  # "- " and nothing after it


Token = tuple[int, int, Any, Any]
"""(kind, column, key, value)."""


def _tokens(lines: Sequence[str]) -> list[Token]:
    out: list[Token] = []
    append = out.append
    match = _LINE.match
    known = _PLAIN
    simple = _SIMPLE.match
    for line in lines:
        common = simple(line)
        if common is not None:
            indent, dash, key, plain = common.groups()
            if plain is None:
                value = _OPEN
            else:
                value = known.get(plain, _MISSING)
                if value is _MISSING:
                    value = _plain(plain)
            column = len(indent)
            if dash is not None:
                append((_ITEM, column, None, None))
                column += 2
            name = known.get(key, _MISSING)
            append((_KEYED, column, _plain(key) if name is _MISSING else name, value))
            continue
        found = match(line)
        if found is None:
            if line.lstrip(" ").startswith("#"):
                continue
            raise UnsupportedError
        last = found.lastgroup
        if last == "indent":
            continue  # a blank line
        indent, dash, key, plain, single, double, flow = found.groups()
        if last == "plain":  # the common case, inline: a plain scalar seen before
            value = known.get(plain, _MISSING)
            if value is _MISSING:
                value = _plain(plain.rstrip(" "))
        elif last == "key":
            value = _OPEN
        else:
            value = _value(last, single, double, flow)
        column = len(indent)
        if dash is not None:
            append((_ITEM, column, None, None))
            column += len(dash)
            if key is None:
                if last == "dash":  # "- " and nothing: its item is on the next lines
                    raise UnsupportedError
                append((_SCALAR, column, None, value))
                continue
        elif key is None:
            raise UnsupportedError  # a scalar on its own line: a continuation, or not a mapping
        name = known.get(key, _MISSING)
        append((_KEYED, column, _plain(key) if name is _MISSING else name, value))
    return out


class _Reader:
    """Recursive descent over the tokens of one document."""

    __slots__ = ("count", "pos", "tokens")

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.count = len(tokens)

    def block(self) -> Any:
        kind, column, _, _ = self.tokens[self.pos]
        if kind == _KEYED:
            return self.mapping(column)
        if kind == _ITEM:
            return self.sequence(column, indentless=False)
        raise UnsupportedError

    def mapping(self, column: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        tokens, count = self.tokens, self.count
        while self.pos < count:
            kind, at, key, value = tokens[self.pos]
            if at < column:
                break
            if at > column or kind != _KEYED:
                raise UnsupportedError  # a continuation line, a stray item, or a bad indentation
            self.pos += 1
            if value is _OPEN:
                value = None
                if self.pos < count:
                    next_kind, next_at, _, _ = tokens[self.pos]
                    if next_at > column:
                        value = self.block()
                    elif next_at == column and next_kind == _ITEM:
                        value = self.sequence(column, indentless=True)
            out[key] = value
        return out

    def sequence(self, column: int, *, indentless: bool) -> list[Any]:
        out: list[Any] = []
        tokens, count = self.tokens, self.count
        while self.pos < count:
            kind, at, _, _ = tokens[self.pos]
            if at < column or (indentless and at == column and kind == _KEYED):
                break
            if at > column or kind != _ITEM:
                raise UnsupportedError
            self.pos += 1
            if self.pos >= count:
                raise UnsupportedError
            item_kind, item_at, _, value = tokens[self.pos]
            if item_kind == _SCALAR:
                self.pos += 1
                out.append(value)
            else:
                out.append(self.mapping(item_at))
        return out


def read(lines: Sequence[str]) -> Any:
    """The value of the one document in ``lines`` (None when it has no content).

    ``lines`` must pass ``readable`` (joined with newlines); raises ``UnsupportedError``
    for anything this reader does not handle."""
    tokens = _tokens(lines)
    if not tokens:
        return None
    reader = _Reader(tokens)
    try:
        value = reader.block()
    except (RecursionError, IndexError):
        raise UnsupportedError from None
    if reader.pos != reader.count:
        raise UnsupportedError
    return value
