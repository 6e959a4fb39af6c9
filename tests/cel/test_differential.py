"""Differential test: modelplane.cel against Kubernetes' own Go DRA CEL library.

Every hand-written and generated case is evaluated live by both sides (no
stored answers) and the outcome categories must agree: compile error; match;
no match; runtime error (Go) versus ``matched=False`` with a reason (ours).
Known, accepted differences are listed with a reason in divergences.yaml.
Without Go the test skips locally and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from modelplane.cel import SelectorError, compile_selector, matches

from tests.cel import celdiff
from tests.cel.cases import Case, all_cases, devices, divergences, go_device, py_device

CASES = all_cases()
DEVICES = devices()
DIVERGENCES = divergences()


@pytest.fixture(scope="module")
def go_results() -> dict[str, dict[str, Any]]:
    try:
        binary = celdiff.build()
    except celdiff.GoUnavailableError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires Go for the differential CEL test: {e}")
        pytest.skip(str(e))
    except subprocess.CalledProcessError as e:
        pytest.fail(f"building tools/celdiff failed:\n{e.stderr}")
    payload = [
        {"id": c.name, "expression": c.expression, "device": go_device(DEVICES[c.device])}
        for c in CASES
    ]
    return celdiff.run_cases(binary, payload)


def go_outcome(result: dict[str, Any]) -> str:
    if result["compileError"] is not None:
        return "compile error"
    if result["runtimeError"] is not None:
        return "runtime error"
    return "match" if result["matched"] else "no match"


def our_outcome(case: Case) -> tuple[str, str | None]:
    try:
        selector = compile_selector(case.expression)
    except SelectorError as e:
        return "compile error", str(e)
    verdict = matches(selector, py_device(DEVICES[case.device]))
    if verdict.reason is not None:
        assert not verdict.matched, "a verdict with a reason must not match"
        return "runtime error", verdict.reason
    return ("match" if verdict.matched else "no match"), None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_agrees_with_kubernetes(case: Case, go_results: dict[str, dict[str, Any]]) -> None:
    go = go_results[case.name]
    theirs = go_outcome(go)
    ours, detail = our_outcome(case)
    listed = DIVERGENCES.get(case.name)
    if listed is not None:
        if ours == theirs:
            pytest.fail(f"listed as a divergence but both sides say {ours!r}; remove the entry")
        pytest.xfail(f"documented divergence: {listed}")
    assert ours == theirs, (
        f"{case.expression!r} on {case.device}: Go says {theirs} "
        f"({go['compileError'] or go['runtimeError']}), modelplane says {ours} ({detail})"
    )


def test_divergence_entries_name_real_cases() -> None:
    names = {c.name for c in CASES}
    assert set(DIVERGENCES) <= names, sorted(set(DIVERGENCES) - names)
    assert all(reason.strip() for reason in DIVERGENCES.values())


def test_corpus_is_large_enough() -> None:
    generated = [c for c in CASES if c.name.startswith("generated #")]
    assert len(CASES) - len(generated) >= 200
    assert len(generated) >= 100
