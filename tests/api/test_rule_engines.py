"""The fast rule evaluator (modelplane.cel) agrees with cel-python on every CRD rule.

Values come from the valid base objects and every case of ``test_rules``, as
each rule sees them (``self`` at its node), plus variants of each: one key
removed, or one string field changed. Where the fast path gives a verdict it
must be cel-python's; where it defers, cel-python decides anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from celpy import celtypes
from celpy.adapter import json_to_cel
from modelplane.api.rules import RULES_KEY, _fast_verdict, program
from modelplane.api.structural import Issue, apply_defaults, check
from modelplane.api.validation import default_validator

from tests.api.builders import edited, valid
from tests.api.test_rules import ACCEPTED, REJECTED

Pair = tuple[str, Any]


def _objects() -> Iterator[dict[str, Any]]:
    for kind in sorted(default_validator().kinds):
        if kind in {c.kind for c in REJECTED}:
            yield valid(kind)
    for rejected in REJECTED:
        yield edited(valid(rejected.kind), *rejected.edits)
    for accepted in ACCEPTED:
        yield edited(valid(accepted.kind), *accepted.edits)


def _variants(value: Any) -> Iterator[Any]:
    yield value
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        yield {k: v for k, v in value.items() if k != key}
        if isinstance(item, str):
            for other in ("", "X", "Worker", "Leader", "EKS", "PrefillDecode", "/x", "http://x"):
                yield {**value, key: other}
        if isinstance(item, list) and item and isinstance(item[0], dict):
            yield {**value, key: [dict(item[0], role="Worker"), *item[1:]]}
            yield {**value, key: item[:1]}


def _pairs() -> list[Pair]:
    seen: dict[str, Pair] = {}

    def record(schema: Mapping[str, Any], value: Any, path: str) -> list[Issue]:
        for rule in schema.get(RULES_KEY, ()):
            for variant in _variants(value):
                key = repr((rule["rule"], variant))
                seen.setdefault(key, (rule["rule"], variant))
        return []

    validator = default_validator()
    for obj in _objects():
        schema = validator.crd(obj["kind"]).schema
        check(schema, apply_defaults(schema, obj), "", record, skip=frozenset({"metadata"}))
    return list(seen.values())


PAIRS = _pairs()


def _reference(rule: str, value: Any) -> bool | None:
    try:
        result = program(rule).evaluate({"self": json_to_cel(value)})
    except Exception:
        return None
    if not isinstance(result, celtypes.BoolType):
        return None
    return bool(result)


def test_the_pairs_cover_every_rule_both_ways() -> None:
    verdicts: dict[str, set[bool]] = {}
    for rule, value in PAIRS:
        verdict = _fast_verdict(rule, {"self": value})
        if verdict is not None:
            verdicts.setdefault(rule, set()).add(verdict)
    rules = {rule for rule, _ in PAIRS}
    assert len(rules) >= 25
    assert {r for r in rules if verdicts.get(r) != {True, False}} == set()


def test_every_fast_verdict_is_cel_pythons() -> None:
    disagreements = [
        (rule, value, verdict)
        for rule, value in PAIRS
        if (verdict := _fast_verdict(rule, {"self": value})) is not None
        and verdict != _reference(rule, value)
    ]
    assert len(PAIRS) > 500
    assert disagreements == []
