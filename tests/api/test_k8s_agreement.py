"""Kubernetes' own code accepts the CRDs and agrees with our validator on every case.

The Go checker (``tools/apigen/k8scheck``) runs the API server's CRD validation
(structural schema, CEL compilation and cost budget) and its object validation
(pruning, defaulting, schema, list types, CEL rules). Every table case and every
seed manifest must get the same verdict, accepted or rejected, from both.
Without Go the test skips locally and fails under ``CI=true``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from modelplane.api import validate

from tests.api import k8scheck
from tests.api.builders import edited, valid
from tests.api.seed import documents, uncommented_variants
from tests.api.test_rules import ACCEPTED, REJECTED

CRDS = sorted((k8scheck.ROOT / "crds").glob("modelplane.ai_*.yaml"))


@pytest.fixture(scope="module")
def binary() -> Path:
    try:
        return k8scheck.build()
    except k8scheck.GoUnavailableError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI requires Go for the Kubernetes agreement test: {e}")
        pytest.skip(str(e))


def _cases() -> list[tuple[str, dict[str, Any], bool]]:
    cases = [(c.name, edited(valid(c.kind), *c.edits), False) for c in REJECTED]
    cases += [(c.name, edited(valid(c.kind), *c.edits), True) for c in ACCEPTED]
    cases += [(d.name, d.raw, True) for d in documents() + uncommented_variants()]
    return cases


@pytest.mark.slow
def test_kubernetes_and_our_validator_agree_on_every_case(binary: Path) -> None:
    cases = _cases()
    theirs = k8scheck.verdicts(binary, CRDS, [obj for _, obj, _ in cases])
    disagreements = []
    for (name, obj, want_ok), k8s_errors in zip(cases, theirs, strict=True):
        ours = [str(e) for e in validate(obj)[1]]
        if (not k8s_errors) != want_ok or (not ours) != want_ok:
            disagreements.append(f"{name}: kubernetes={k8s_errors} ours={ours}")
    assert disagreements == []
