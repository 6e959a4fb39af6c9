"""Schema defaults as a validated object carries them (the dict every reader sees)."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.api import KINDS, validate

from tests.api.builders import Set, edited, valid


def _defaulted(raw: dict[str, Any]) -> dict[str, Any]:
    defaulted, errors = validate(raw)
    assert [str(e) for e in errors] == []
    return defaulted


def test_a_deployment_gets_its_serving_engine_and_member_defaults() -> None:
    spec = _defaulted(valid("ModelDeployment"))["spec"]
    assert spec["serving"]["mode"] == "Unified"
    engine = spec["engines"][0]
    assert engine["copies"] == 1
    assert "phase" not in engine
    member = engine["members"][0]
    assert member["role"] == "Standalone"
    assert "worker" not in member
    assert member["nodeSelector"]["devices"][0]["count"] == 1


def test_a_class_device_claims_through_dra_unless_it_says_synthetic() -> None:
    gpu, nic = _defaulted(valid("InferenceClass"))["spec"]["devices"]
    assert (gpu["claim"], nic["claim"]) == ("DRA", "Synthetic")
    assert gpu["attributes"] == {"architecture": {"string": "Hopper"}}
    assert gpu["capacity"]["memory"] == {"value": "81559Mi"}
    assert "deviceClassName" not in nic


def test_a_replica_gets_its_node_cost() -> None:
    engine = _defaulted(valid("ModelReplica"))["spec"]["engines"][0]
    assert engine["nodeCost"] == 1
    assert engine["members"][0]["nodePoolName"] == "gpu-l4"


def test_defaults_fill_in_what_a_manifest_leaves_out() -> None:
    raw = edited(valid("ModelCache"), Set("spec.huggingFace.authSecret", {"name": "hf-token"}))
    assert _defaulted(raw)["spec"]["huggingFace"]["authSecret"]["key"] == "HF_TOKEN"
    endpoint = _defaulted(edited(valid("ModelEndpoint"), Set("spec", {"url": "http://x/"})))
    assert endpoint["spec"] == {"url": "http://x/", "rewritePath": "/"}


@pytest.mark.parametrize("kind", KINDS)
def test_defaulting_is_idempotent(kind: str) -> None:
    once = _defaulted(valid(kind))
    assert once["kind"] == kind
    assert _defaulted(once) == once
