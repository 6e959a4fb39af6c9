"""Differential test: modelplane.cel against Kubernetes' Go library DRA CEL.

Every hand-written (corpus.yaml) and generated (generator.py, pinned in
generated.yaml) case carries its expected outcome, ``want``: compile error;
match; no match; runtime error (Go) versus ``matched=False`` with a reason
(ours).  ``test_ours`` checks our evaluator against the pinned outcome and
needs no Go; ``test_kubernetes`` evaluates every case live with
``tools/celdiff`` and checks Go against the same pin, so the two together
say both sides agree.  Known, accepted differences would be listed with a
reason and our own outcome in divergences.yaml (the list is empty).
Without Go the Go half skips locally and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import pytest
from modelplane.cel import SelectorError, compile_selector, matches

from tests.cel import celdiff
from tests.cel.cases import OUTCOMES, Case, all_cases, devices, divergences, go_device, py_device
from tests.cel.pin import outcome

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


def _pinned(case: Case) -> str:
    if case.want is None:
        pytest.fail("not pinned: generated.yaml is stale, run `python -m tests.cel.pin`")
    assert case.want in OUTCOMES, case.want
    return case.want


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_ours(case: Case) -> None:
    want = _pinned(case)
    ours, detail = our_outcome(case)
    listed = DIVERGENCES.get(case.name)
    if listed is not None:
        assert ours == listed[1], f"documented divergence ({listed[0]}) now says {ours!r}"
        assert ours != want, "listed as a divergence but agrees with Kubernetes; remove the entry"
        return
    assert ours == want, f"{case.expression!r} on {case.device}: want {want}, got {ours} ({detail})"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kubernetes(case: Case, go_results: dict[str, dict[str, Any]]) -> None:
    want = _pinned(case)
    go = go_results[case.name]
    theirs = outcome(go)
    assert theirs == want, (
        f"{case.expression!r} on {case.device}: pinned {want}, Go says {theirs} "
        f"({go['compileError'] or go['runtimeError']})"
    )


# The one format case whose error is the checker's overload message, worded differently.
_CHECKER_WORDED = frozenset({"format of a string is a compile error"})
FORMAT_ERRORS = [
    c
    for c in CASES
    if c.name.startswith("format ") and "error" in (c.want or "") and c.name not in _CHECKER_WORDED
]
_GO_LOCATION = re.compile(r"^(compilation failed: )?ERROR: <input>:\d+:\d+: ")


@pytest.mark.parametrize("case", FORMAT_ERRORS, ids=[c.name for c in FORMAT_ERRORS])
def test_format_errors_read_as_kubernetes(
    case: Case, go_results: dict[str, dict[str, Any]]
) -> None:
    """``format``'s own errors, at compile and at run time, carry cel-go's words."""
    go = go_results[case.name]
    theirs = _GO_LOCATION.sub("", (go["compileError"] or go["runtimeError"]).splitlines()[0])
    assert our_outcome(case)[1] == theirs


def test_format_cases_cover_every_clause_and_error() -> None:
    expressions = " ".join(c.expression for c in CASES if c.name.startswith("format "))
    for clause in ("%s", "%d", "%f", "%.2f", "%e", "%b", "%x", "%X", "%o", "%%"):
        assert clause in expressions, clause
    assert len(FORMAT_ERRORS) >= 20


def test_divergence_entries_name_real_cases() -> None:
    names = {c.name for c in CASES}
    assert set(DIVERGENCES) <= names, sorted(set(DIVERGENCES) - names)
    assert all(reason.strip() for reason, _ in DIVERGENCES.values())


def test_corpus_is_large_enough() -> None:
    generated = [c for c in CASES if c.name.startswith("generated #")]
    assert len(CASES) >= 1000
    assert len(generated) >= 300
