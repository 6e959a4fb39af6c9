"""One YAML document to plain Python values, as ``yaml.safe_load`` gives them, faster.

``load_document(text, memo)`` composes the document with libyaml's safe loader (when
PyYAML has it) and builds plain maps, lists and strings itself; every other scalar
(int, bool, null, float, timestamp, ...) goes through PyYAML's own safe constructors.
Anything unusual (merge keys ``<<``, explicit tags, keys that are not hashable) falls
back to ``yaml.load`` with the safe loader, so the result always equals
``yaml.safe_load(text)``. ``memo`` caches how plain scalars resolve to tags (a pure
function of the scalar's text); pass one dict for the documents of one file. Ints,
bools, nulls and floats are built once per (tag, text) per process (they are
immutable; at most 65,536 are kept).

``load_lines(lines, memo, simple)`` reads the document whose lines are given: with
``modelplane.api.blockyaml`` first when ``simple`` (the text passed ``readable``),
else, or when that reader declines, with ``load_document``.

Errors are PyYAML's: ``yaml.YAMLError`` for a malformed document.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from modelplane.api import blockyaml

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_FLOAT = "tag:yaml.org,2002:float"
_SCALARS_MAX = 65536
_IMMUTABLE = frozenset(
    {"tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", _FLOAT}
)


_SCALARS: dict[tuple[str, str], Any] = {}
"""Built ints, bools, nulls and floats by (tag, text): immutable, so shared."""


class _UnusualError(Exception):
    """The document needs PyYAML's full constructor."""


class _Loader(_BASE):  # type: ignore[valid-type,misc]
    memo: dict[tuple[str, bool], str]
    scalars: dict[tuple[str, str], Any]

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            key = (value, implicit[1])
            tag = self.memo.get(key)
            if tag is None:
                tag = self.memo[key] = super().resolve(kind, value, implicit)
            return tag
        return super().resolve(kind, value, implicit)


def _scalar(loader: _Loader, node: Node) -> Any:
    """A scalar's value; ints, bools, nulls and floats are built once per text."""
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag not in _IMMUTABLE:
        return loader.construct_object(node, deep=True)
    key = (tag, node.value)
    built = loader.scalars
    try:
        return built[key]
    except KeyError:
        if len(built) >= _SCALARS_MAX:
            built.clear()
        value = built[key] = loader.construct_object(node, deep=True)
        return value


def _build(loader: _Loader, node: Node) -> Any:
    kind, tag = node.__class__, node.tag
    if kind is ScalarNode:
        return _scalar(loader, node)
    if kind is MappingNode and tag == _MAP:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _UnusualError
            key = key_node.value if key_node.tag == _STR else _build(loader, key_node)
            try:
                if value_node.__class__ is ScalarNode:
                    out[key] = _scalar(loader, value_node)
                else:
                    out[key] = _build(loader, value_node)
            except TypeError:  # an unhashable key
                raise _UnusualError from None
        return out
    if kind is SequenceNode and tag == _SEQ:
        return [_build(loader, item) for item in node.value]
    raise _UnusualError


def load_document(text: str, memo: dict[tuple[str, bool], str] | None = None) -> Any:
    """The one document in ``text`` (None when empty), equal to ``yaml.safe_load(text)``."""
    loader = _Loader(text)
    loader.memo = {} if memo is None else memo
    loader.scalars = _SCALARS
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node)
    except _UnusualError:
        pass
    except RecursionError:
        pass
    finally:
        loader.dispose()
    return yaml.load(text, Loader=_BASE)


def load_lines(
    lines: list[str], memo: dict[tuple[str, bool], str] | None = None, simple: bool = False
) -> Any:
    """The one document made of ``lines``, equal to ``yaml.safe_load`` of them joined.

    ``simple`` says the text passed ``blockyaml.readable``: the fast reader may try it."""
    if simple:
        try:
            return blockyaml.read(lines)
        except blockyaml.UnsupportedError:
            pass
    return load_document("\n".join(lines) + "\n", memo)
