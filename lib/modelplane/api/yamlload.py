"""One YAML document to plain Python values, as ``yaml.safe_load`` gives them, faster.

``load_document(text, memo)`` composes the document with libyaml's safe loader (when
PyYAML has it) and builds plain maps, lists and strings itself; every other scalar
(int, bool, null, float, timestamp, ...) goes through PyYAML's own safe constructors.
Anything unusual (merge keys ``<<``, explicit tags, keys that are not hashable) falls
back to ``yaml.load`` with the safe loader, so the result always equals
``yaml.safe_load(text)``. ``memo`` caches how plain scalars resolve to tags (a pure
function of the scalar's text); pass one dict for the documents of one file.

Errors are PyYAML's: ``yaml.YAMLError`` for a malformed document.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _UnusualError(Exception):
    """The document needs PyYAML's full constructor."""


class _Loader(_BASE):  # type: ignore[valid-type,misc]
    memo: dict[tuple[str, bool], str]

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            key = (value, implicit[1])
            tag = self.memo.get(key)
            if tag is None:
                tag = self.memo[key] = super().resolve(kind, value, implicit)
            return tag
        return super().resolve(kind, value, implicit)


def _build(loader: _Loader, node: Node) -> Any:
    kind, tag = node.__class__, node.tag
    if kind is ScalarNode:
        return node.value if tag == _STR else loader.construct_object(node, deep=True)
    if kind is MappingNode and tag == _MAP:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _UnusualError
            key = _build(loader, key_node)
            try:
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
