"""Regular expressions with RE2 semantics, as cel-go's ``matches`` and Kubernetes' ``find``.

Patterns compile with Google's RE2 (the ``google-re2`` bindings): linear
time, the RE2 syntax Go's ``regexp`` package implements, no backtracking
constructs (lookaround, backreferences) — those are compile errors, as in Go.
Compiled patterns are cached per process.  ``find_all`` follows Go's
``FindAllString``: an empty match right after the previous match is skipped.
Known difference from Go's ``regexp``: none found by the differential
corpus; C++ RE2 and Go agree on the syntax both document, and the few
constructs only one of them accepts (``\\C``) are listed in
docs/cel-divergences.md.
"""

from __future__ import annotations

from typing import Any

import re2  # type: ignore[import-untyped]

__all__ = ["compile_regex", "find", "find_all"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_CACHE: dict[str, Any] = {}


def compile_regex(pattern: str) -> Any:
    """The compiled pattern; raise ``ValueError`` when RE2 rejects it."""
    compiled = _CACHE.get(pattern)
    if compiled is None:
        if "\\C" in pattern:
            raise ValueError(f"invalid regular expression {pattern!r}: invalid escape \\C")
        try:
            compiled = re2.compile(pattern, options=_OPTIONS)
        except re2.error as e:
            detail = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
            raise ValueError(f"invalid regular expression {pattern!r}: {detail}") from None
        if len(_CACHE) > 4096:
            _CACHE.clear()
        _CACHE[pattern] = compiled
    return compiled


def find(text: str, pattern: str) -> str:
    """The leftmost match, or "" when there is none (Go's ``FindString``)."""
    match = compile_regex(pattern).search(text)
    return "" if match is None else str(match.group(0))


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Successive non-overlapping matches, at most ``limit`` (all when negative)."""
    compiled = compile_regex(pattern)
    out: list[str] = []
    pos = 0
    previous_end = -1
    while pos <= len(text) and (limit < 0 or len(out) < limit):
        match = compiled.search(text, pos)
        if match is None:
            break
        start, end = match.start(), match.end()
        if start == end and start == previous_end:
            pos = start + 1
            continue
        out.append(str(match.group(0)))
        previous_end = end
        pos = end if end > start else end + 1
    return out
