"""The manifest loader: files and folders, multi-document YAML, JSON, and bad input."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml
from modelplane.api import Document, load_manifests, load_paths
from modelplane.api.manifests import split_documents

SERVICE = """\
apiVersion: modelplane.ai/v1alpha1
kind: ModelService
metadata:
  name: {name}
  namespace: ml-team
spec:
  endpoints:
  - selector:
      matchLabels:
        modelplane.ai/deployment: {name}
"""

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: ml-team
"""


def _summary(docs: list[Document]) -> list[tuple[str, int, str]]:
    out = []
    for d in docs:
        state = "ok" if d.ok else "foreign" if d.foreign else "error"
        out.append((d.source.file.name, d.source.index, state))
    return out


def test_a_multi_document_file_yields_each_document_with_its_index(tmp_path: Path) -> None:
    f = tmp_path / "all.yaml"
    f.write_text(
        "# a comment\n---\n" + SERVICE.format(name="a") + "---\n" + SERVICE.format(name="b")
    )
    docs = load_manifests(f)
    assert _summary(docs) == [("all.yaml", 0, "ok"), ("all.yaml", 1, "ok")]
    assert docs[1].obj is not None
    assert (docs[1].obj["kind"], docs[1].obj["metadata"]["name"]) == ("ModelService", "b")


def test_a_malformed_document_is_reported_and_the_rest_still_load(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text(
        SERVICE.format(name="a") + "---\nspec: [unclosed\n---\n" + SERVICE.format(name="c")
    )
    docs = load_manifests(f)
    assert _summary(docs) == [
        ("broken.yaml", 0, "ok"),
        ("broken.yaml", 1, "error"),
        ("broken.yaml", 2, "ok"),
    ]
    assert docs[1].raw is None
    assert "malformed YAML" in docs[1].errors[0].message
    assert str(docs[1].source).endswith("broken.yaml (document 1)")


def test_objects_of_other_apis_are_reported_separately(tmp_path: Path) -> None:
    f = tmp_path / "mixed.yaml"
    f.write_text(NAMESPACE + "---\n" + SERVICE.format(name="a"))
    docs = load_manifests(f)
    assert _summary(docs) == [("mixed.yaml", 0, "foreign"), ("mixed.yaml", 1, "ok")]
    assert "not a modelplane.ai/v1alpha1 object" in docs[0].errors[0].message
    assert docs[0].raw is not None and docs[0].raw["kind"] == "Namespace"


def test_an_invalid_object_carries_its_field_errors(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(SERVICE.format(name="a").replace("endpoints:", "endpointz:"))
    (doc,) = load_manifests(f)
    assert doc.obj is None and not doc.foreign
    assert sorted(str(e) for e in doc.errors) == [
        "ModelService ml-team/a: spec.endpoints: Required value",
        'ModelService ml-team/a: spec.endpointz: unknown field "endpointz"',
    ]


def test_a_document_that_is_not_an_object_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    (doc,) = load_manifests(f)
    assert not doc.ok and "must be an object" in doc.errors[0].message


def test_folders_are_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.yml").write_text(SERVICE.format(name="z"))
    (tmp_path / "a.yaml").write_text(SERVICE.format(name="a"))
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "apiVersion": "modelplane.ai/v1alpha1",
                "kind": "ModelEndpoint",
                "metadata": {"name": "e", "namespace": "ml-team"},
                "spec": {"url": "https://example.com/"},
            }
        )
    )
    (tmp_path / "notes.txt").write_text("not a manifest")
    docs = load_manifests(tmp_path)
    assert _summary(docs) == [("a.yaml", 0, "ok"), ("z.yml", 0, "ok"), ("c.json", 0, "ok")]


def test_malformed_json_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text("{")
    (doc,) = load_manifests([f])
    assert "malformed JSON" in doc.errors[0].message


def test_a_leading_separator_adds_no_document_and_empty_ones_are_skipped(tmp_path: Path) -> None:
    parts = split_documents("# header\n---\n---\na: 1\n")
    assert [yaml.safe_load(p) for p in parts] == [None, {"a": 1}]
    f = tmp_path / "gaps.yaml"
    f.write_text("---\n---\n" + SERVICE.format(name="a") + "...\n")
    assert _summary(load_manifests(f)) == [("gaps.yaml", 1, "ok")]


def test_load_paths_returns_raw_objects_of_every_api_and_parse_errors(tmp_path: Path) -> None:
    f = tmp_path / "mixed.yaml"
    f.write_text(
        NAMESPACE + "---\nkind: [\n---\n" + SERVICE.format(name="a").replace("spec", "spek")
    )
    loaded = load_paths([f])
    assert [o["kind"] for o in loaded.objects] == ["Namespace", "ModelService"]
    assert len(loaded.errors) == 1
    assert "mixed.yaml (document 1): malformed YAML" in loaded.errors[0]


def test_load_paths_reads_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(SERVICE.format(name="a")))
    loaded = load_paths(["-"])
    assert loaded.errors == ()
    assert loaded.objects[0]["metadata"]["name"] == "a"
