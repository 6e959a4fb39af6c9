"""The generated CRDs: names, scopes, subresources, printer columns and schema strictness."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from modelplane.api.crds import load_crds
from modelplane.api.validation import default_validator

ROOT = Path(__file__).resolve().parents[2]
CRDS = load_crds(ROOT / "crds")

NAMES = {
    # kind: (scope, short name)
    "InferenceClass": ("Cluster", "icl"),
    "InferenceCluster": ("Cluster", "ic"),
    "InferenceGateway": ("Cluster", "ig"),
    "ModelDeployment": ("Namespaced", "md"),
    "ModelReplica": ("Namespaced", "mr"),
    "ModelService": ("Namespaced", "ms"),
    "ModelEndpoint": ("Namespaced", "me"),
    "ModelCache": ("Namespaced", "mc"),
}

COLUMNS = {
    "InferenceClass": ["DESCRIPTION", "AGE"],
    "InferenceCluster": ["SOURCE", "READY", "GATEWAY", "ACCOUNTING", "AGE"],
    "InferenceGateway": ["BACKEND", "ADDRESS", "AGE"],
    "ModelDeployment": ["REPLICAS", "DESIRED", "AGE"],
    "ModelReplica": ["CLUSTER", "SYNCED", "READY", "AGE"],
    "ModelService": ["ADDRESS", "AGE"],
    "ModelEndpoint": ["URL", "AGE"],
    "ModelCache": ["SOURCE", "SIZE", "CLUSTERS", "PROGRESS", "READY", "AGE"],
}

TEMPLATE_PATHS = {
    "ModelDeployment": {"spec.engines[].members[].template"},
    "ModelReplica": {"spec.engines[].members[].template"},
}


def _version(kind: str) -> Mapping[str, Any]:
    versions: list[Mapping[str, Any]] = CRDS[kind].definition["spec"]["versions"]
    assert [v["name"] for v in versions] == ["v1alpha1"]
    return versions[0]


def _columns(kind: str) -> dict[str, str]:
    return {c["name"].upper(): c["jsonPath"] for c in _version(kind)["additionalPrinterColumns"]}


def _nodes(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _nodes(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), Mapping):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def _resolves(schema: Mapping[str, Any], json_path: str) -> bool:
    node: Mapping[str, Any] = schema
    for step in re.findall(r"\.(\w+)|\[\?\(@\.(\w+)==\"\w+\"\)\]", json_path):
        name, filter_key = step
        if filter_key:
            if node.get("type") != "array" or filter_key not in node["items"]["properties"]:
                return False
            node = node["items"]
            continue
        props = node.get("properties") or {}
        if name == "creationTimestamp" and node is schema["properties"]["metadata"]:
            return True
        if name not in props:
            return False
        node = props[name]
    return True


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_a_kind_has_its_scope_short_name_and_the_modelplane_category(kind: str) -> None:
    spec = CRDS[kind].definition["spec"]
    assert spec["group"] == "modelplane.ai"
    assert spec["scope"] == NAMES[kind][0]
    assert spec["names"]["shortNames"] == [NAMES[kind][1]]
    assert spec["names"]["categories"] == ["modelplane"]
    assert CRDS[kind].definition["metadata"]["name"] == f"{spec['names']['plural']}.modelplane.ai"


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_every_kind_has_a_status_subresource(kind: str) -> None:
    assert _version(kind)["subresources"]["status"] == {}


def test_the_deployment_scale_subresource_has_all_three_paths() -> None:
    assert _version("ModelDeployment")["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_only_the_deployment_scales() -> None:
    assert [k for k in NAMES if "scale" in _version(k)["subresources"]] == ["ModelDeployment"]


@pytest.mark.parametrize("kind", sorted(COLUMNS))
def test_a_kind_prints_its_columns(kind: str) -> None:
    assert list(_columns(kind)) == COLUMNS[kind]


def test_the_printer_columns_read_the_fields_the_docs_name() -> None:
    ready = '.status.conditions[?(@.type=="Ready")].status'
    assert _columns("ModelDeployment")["REPLICAS"] == ".status.readyReplicas"
    assert _columns("ModelDeployment")["DESIRED"] == ".spec.replicas"
    assert _columns("ModelReplica")["CLUSTER"] == ".spec.clusterName"
    assert _columns("ModelReplica")["SYNCED"] == '.status.conditions[?(@.type=="Synced")].status'
    assert _columns("ModelReplica")["READY"] == ready
    assert _columns("InferenceCluster")["GATEWAY"] == ".status.gatewayAddress"
    assert _columns("InferenceCluster")["ACCOUNTING"] == ".status.schedulerExtension.accounting"
    assert _columns("ModelService")["ADDRESS"] == ".status.address"
    assert _columns("ModelEndpoint")["URL"] == ".spec.url"
    assert _columns("ModelCache")["SIZE"] == ".spec.huggingFace.sizeGiB"


@pytest.mark.parametrize(("kind", "column"), [(k, c) for k in sorted(COLUMNS) for c in COLUMNS[k]])
def test_every_printer_column_points_at_a_field_of_the_schema(kind: str, column: str) -> None:
    assert _resolves(CRDS[kind].schema, _columns(kind)[column])


def test_the_column_check_notices_a_missing_field() -> None:
    assert not _resolves(CRDS["ModelCache"].schema, ".status.size")


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_only_member_templates_keep_unknown_fields(kind: str) -> None:
    found = {
        path
        for path, node in _nodes(CRDS[kind].schema)
        if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert found == TEMPLATE_PATHS.get(kind, set())


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_the_schema_is_structural_and_bounded(kind: str) -> None:
    for path, node in _nodes(CRDS[kind].schema):
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), path
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        if node.get("type") == "string" and path.startswith(("spec", "status")):
            assert "maxLength" in node or node.get("format") == "date-time", path


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_every_field_has_a_description_for_kubectl_explain(kind: str) -> None:
    for path, node in _nodes(CRDS[kind].schema):
        parent_is_map = path.endswith("{}")
        is_metadata = path.startswith("metadata")  # the API server forbids describing it
        if path and not parent_is_map and not path.endswith("[]") and not is_metadata:
            assert node.get("description"), path


def test_every_rule_compiles_once_and_carries_a_message() -> None:
    assert default_validator().rule_count >= 30
    for kind in NAMES:
        for path, node in _nodes(CRDS[kind].schema):
            for rule in node.get("x-kubernetes-validations", ()):
                assert rule.get("message"), (kind, path, rule["rule"])


def test_the_committed_crds_and_types_match_the_source_of_truth() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "apigen" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
