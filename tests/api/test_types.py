"""The generated Python types: immutable, snake_case, defaulted, and round-tripping."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from modelplane.api import KIND_TYPES, validate
from modelplane.api.types import (
    AttributeValue,
    ClassDevice,
    InferenceClass,
    InferenceCluster,
    Member,
    ModelDeployment,
    ModelEndpoint,
    ModelReplica,
)

from tests.api.builders import GANG, Set, edited, valid


def _typed(raw: dict[str, Any]) -> Any:
    defaulted, errors = validate(raw)
    assert errors == []
    return KIND_TYPES[raw["kind"]].from_dict(defaulted)


def test_a_deployment_reads_as_typed_values_with_schema_defaults() -> None:
    md = _typed(valid("ModelDeployment"))
    assert isinstance(md, ModelDeployment)
    assert md.metadata.name == "qwen"
    assert md.metadata.namespace == "ml-team"
    assert md.spec.serving.mode == "Unified"
    engine = md.spec.engines[0]
    assert engine.copies == 1
    assert engine.phase is None
    member = engine.members[0]
    assert isinstance(member, Member)
    assert member.role == "Standalone"
    assert member.worker is None
    assert member.node_selector is not None
    assert member.node_selector.devices is not None
    assert member.node_selector.devices[0].count == 1
    assert member.template["spec"]["containers"][0]["name"] == "engine"


def test_a_class_reads_its_devices_attributes_and_capacity() -> None:
    icl = _typed(valid("InferenceClass"))
    assert isinstance(icl, InferenceClass)
    gpu, nic = icl.spec.devices
    assert isinstance(gpu, ClassDevice)
    assert (gpu.claim, nic.claim) == ("DRA", "Synthetic")
    assert gpu.attributes == {"architecture": AttributeValue(string_value="Hopper")}
    assert gpu.capacity is not None
    assert gpu.capacity["memory"].value == "81559Mi"
    assert nic.device_class_name is None


def test_lists_are_tuples_and_maps_are_read_only() -> None:
    md = _typed(edited(valid("ModelDeployment"), Set("spec.engines[0].members", GANG)))
    assert isinstance(md, ModelDeployment)
    assert isinstance(md.spec.engines, tuple)
    assert isinstance(md.spec.engines[0].members, tuple)
    with pytest.raises(TypeError):
        md.spec.engines[0].members[0].template["spec"] = {}  # type: ignore[index]
    cluster = _typed(valid("InferenceCluster"))
    assert isinstance(cluster, InferenceCluster)
    labels = cluster.metadata.labels
    assert isinstance(labels, Mapping)
    with pytest.raises(TypeError):
        labels["x"] = "y"  # type: ignore[index]


def test_objects_are_frozen() -> None:
    md = _typed(valid("ModelDeployment"))
    assert isinstance(md, ModelDeployment)
    with pytest.raises(dataclasses.FrozenInstanceError):
        md.spec.replicas = 3  # type: ignore[misc]


def test_unset_optional_fields_are_omitted_from_the_dict_form() -> None:
    me = _typed(valid("ModelEndpoint"))
    assert isinstance(me, ModelEndpoint)
    assert me.status is None
    assert me.to_dict() == {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "together", "namespace": "ml-team"},
        "spec": {"url": "https://api.together.xyz/", "rewritePath": "/"},
    }


def test_a_replica_built_in_python_validates_and_round_trips() -> None:
    replica = ModelReplica.from_dict(validate(valid("ModelReplica"))[0])
    again = validate(replica.to_dict())
    assert again[1] == []
    assert ModelReplica.from_dict(again[0]) == replica
    assert replica.spec.engines[0].node_cost == 1
    assert replica.spec.engines[0].members[0].node_pool_name == "gpu-l4"


def test_defaults_fill_in_what_a_manifest_leaves_out() -> None:
    raw = edited(
        valid("ModelCache"),
        Set("spec.huggingFace.authSecret", {"name": "hf-token"}),
    )
    cache = _typed(raw)
    assert cache.spec.hugging_face.auth_secret.key == "HF_TOKEN"
    endpoint = _typed(edited(valid("ModelEndpoint"), Set("spec", {"url": "http://x/"})))
    assert endpoint.spec.rewrite_path == "/"


@pytest.mark.parametrize("kind", sorted(KIND_TYPES))
def test_every_kind_round_trips(kind: str) -> None:
    defaulted, errors = validate(valid(kind))
    assert errors == []
    obj = KIND_TYPES[kind].from_dict(defaulted)
    assert obj.kind == kind
    assert obj.to_dict() == defaulted
