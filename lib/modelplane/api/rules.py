"""Evaluates a CRD's ``x-kubernetes-validations`` rules.

Each rule sees ``self`` bound to the node it is declared on, with the standard
CEL macros (``has``, ``all``, ``exists``, ``exists_one``, ``map``, ``filter``),
``size``, ``in`` and the string functions ``startsWith``, ``endsWith``,
``contains`` and ``matches``. Transition rules (``oldSelf``) are not supported
offline.

Each rule is compiled once per process by ``modelplane.cel`` (closures,
``self`` declared ``dyn``, evaluated on the JSON value directly); cel-python is
the reference. A boolean from the fast program is the verdict; anything else
(a rule the fast checker rejects, a runtime error, a non-boolean result) is
decided by cel-python, so errors and their messages are exactly cel-python's.
cel-python is imported and a rule compiled with it only when that happens, which
for valid objects of the generated CRDs is never. Values reach a rule only once
their subtree passed the structural check, so they carry their schema's types.

Guarantees: a rule that neither compiler accepts raises ``RuleCompileError``;
one that fails to evaluate is reported as an issue at its node, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from modelplane.api.structural import RULES, Issue, child
from modelplane.cel.compiler import Frame
from modelplane.cel.expression import compile_expression
from modelplane.cel.model import SelectorError
from modelplane.cel.types import DYN

RULES_KEY = RULES

_VARIABLES = {"self": DYN}


class RuleCompileError(ValueError):
    """A rule in a CRD is not valid CEL."""


@cache
def _environment() -> Any:
    import celpy  # the reference is needed only for what the fast program cannot decide

    return celpy.Environment()


@cache
def program(rule: str) -> Any:
    """The compiled, cached cel-python program of one rule (the reference)."""
    env = _environment()
    try:
        return env.program(env.compile(rule))
    except Exception as exc:  # celpy raises several parser error types
        raise RuleCompileError(f"rule {rule!r} does not compile: {exc}") from exc


@cache
def fast_program(rule: str) -> Callable[[Frame], Any] | None:
    """The rule compiled to closures over a ``{"self": value}`` frame, or None if unsupported."""
    try:
        # Unmetered: the DRA cost limit is not a CRD rule's budget, and a rule that
        # errors here is decided by the reference anyway.
        return compile_expression(rule, _VARIABLES, metered=False).run
    except SelectorError:
        return None


def compile_all(schema: Mapping[str, Any]) -> int:
    """Compiles every rule under ``schema``; returns how many there are."""
    count = 0
    for rule in schema.get(RULES_KEY, ()):
        if fast_program(rule["rule"]) is None:
            program(rule["rule"])
        count += 1
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            count += compile_all(sub)
    for sub in (schema.get("properties") or {}).values():
        count += compile_all(sub)
    return count


def _target(path: str, field_path: str | None) -> str:
    if not field_path:
        return path
    target = path
    for part in field_path.lstrip(".").split("."):
        target = child(target, part)
    return target


def _fast_verdict(rule: str, frame: Frame) -> bool | None:
    """True/False from the fast program; None when cel-python must decide."""
    run = fast_program(rule)
    if run is None:
        return None
    try:
        result = run(frame)
    except Exception:  # EvalError, or anything unexpected: defer to the reference
        return None
    return result if type(result) is bool else None


def _reference_issue(rule: Mapping[str, Any], value: Any, target: str) -> Issue | None:
    """The issue cel-python reports for one rule, or None when the rule holds."""
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    try:
        result = program(rule["rule"]).evaluate({"self": json_to_cel(value)})
    except Exception as exc:  # evaluation errors are the object's problem
        return (target, f"rule could not be evaluated: {rule['rule']}: {exc}")
    if isinstance(result, CELEvalError):
        return (target, f"rule could not be evaluated: {rule['rule']}: {result}")
    if not bool(result):
        return (target, str(rule.get("message") or f"failed rule: {rule['rule']}"))
    return None


def holding(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """The test that every rule of this schema node holds for a value, by the fast programs
    alone: False when one fails or cannot decide (``evaluate`` then says why)."""
    runs = [fast_program(rule["rule"]) for rule in schema.get(RULES_KEY, ())]
    if any(run is None for run in runs):
        return lambda value: False

    def holds(value: Any) -> bool:
        frame = {"self": value}
        for run in runs:
            assert run is not None
            try:
                if run(frame) is not True:
                    return False
            except Exception:  # EvalError, or anything unexpected: the reference decides
                return False
        return True

    return holds


def evaluate(schema: Mapping[str, Any], value: Any, path: str) -> list[Issue]:
    """The issues of the rules declared on this schema node, for ``value``."""
    rules = schema.get(RULES_KEY)
    if not rules:
        return []
    frame = {"self": value}
    issues: list[Issue] = []
    for rule in rules:
        verdict = _fast_verdict(rule["rule"], frame)
        if verdict is True:
            continue
        target = _target(path, rule.get("fieldPath"))
        if verdict is False:
            issues.append((target, str(rule.get("message") or f"failed rule: {rule['rule']}")))
            continue
        issue = _reference_issue(rule, value, target)
        if issue is not None:
            issues.append(issue)
    return issues
