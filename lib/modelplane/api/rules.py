"""Evaluates a CRD's ``x-kubernetes-validations`` rules with cel-python.

Each rule sees ``self`` bound to the node it is declared on, with the standard
CEL macros (``has``, ``all``, ``exists``, ``exists_one``, ``filter``), ``size``,
``in`` and the string functions ``startsWith``, ``endsWith``, ``contains`` and
``matches``. Transition rules (``oldSelf``) are not supported offline.

Guarantees: each rule text is compiled once per process and reused; a rule that
fails to compile or evaluate is reported as an issue at its node, never raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from modelplane.api.structural import Issue, child

RULES_KEY = "x-kubernetes-validations"

_ENV = celpy.Environment()


class RuleCompileError(ValueError):
    """A rule in a CRD is not valid CEL."""


@cache
def program(rule: str) -> Any:
    """The compiled, cached program of one rule."""
    try:
        return _ENV.program(_ENV.compile(rule))
    except Exception as exc:  # celpy raises several parser error types
        raise RuleCompileError(f"rule {rule!r} does not compile: {exc}") from exc


def compile_all(schema: Mapping[str, Any]) -> int:
    """Compiles every rule under ``schema``; returns how many there are."""
    count = 0
    for rule in schema.get(RULES_KEY, ()):
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


def evaluate(schema: Mapping[str, Any], value: Any, path: str) -> list[Issue]:
    """The issues of the rules declared on this schema node, for ``value``."""
    rules = schema.get(RULES_KEY)
    if not rules:
        return []
    activation = {"self": json_to_cel(value)}
    issues: list[Issue] = []
    for rule in rules:
        target = _target(path, rule.get("fieldPath"))
        try:
            result = program(rule["rule"]).evaluate(activation)
        except Exception as exc:  # evaluation errors are the object's problem
            issues.append((target, f"rule could not be evaluated: {rule['rule']}: {exc}"))
            continue
        if isinstance(result, CELEvalError):
            issues.append((target, f"rule could not be evaluated: {rule['rule']}: {result}"))
        elif not bool(result):
            issues.append((target, str(rule.get("message") or f"failed rule: {rule['rule']}")))
    return issues
