"""The overlay rule of dry runs, without gRPC: replace in place, append the rest."""

from __future__ import annotations

from typing import Any

import pytest
from fleet_scheduler.dryrun import (
    Given,
    InvalidManifestsError,
    being_deleted,
    key,
    parse_manifests,
)


def obj(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (obj("ModelDeployment", "chat"), ("ModelDeployment", "default", "chat")),
        (obj("ModelDeployment", "chat", "ml"), ("ModelDeployment", "ml", "chat")),
        (obj("InferenceCluster", "east"), ("InferenceCluster", "", "east")),
        ({"kind": "ModelCache"}, ("ModelCache", "default", "")),
    ],
    ids=[
        "a namespaced kind without a namespace is in default",
        "a namespaced kind keeps its namespace",
        "a cluster-scoped kind has no namespace",
        "missing metadata still has a key",
    ],
)
def test_objects_are_identified_by_kind_namespace_and_name(
    item: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    assert key(item) == expected


def test_documents_are_named_by_text_and_index() -> None:
    given = parse_manifests(
        [
            "kind: InferenceClass\nmetadata: {name: a}\n---\nkind: InferenceClass\nmetadata: {name: b}\n",
            '{"kind": "ModelDeployment",\t"metadata": {"name": "c"}}',
        ]
    )
    assert given == Given(
        objects=(
            {"kind": "InferenceClass", "metadata": {"name": "a"}},
            {"kind": "InferenceClass", "metadata": {"name": "b"}},
            {"kind": "ModelDeployment", "metadata": {"name": "c"}},
        ),
        sources=(
            "manifests[0] (document 0)",
            "manifests[0] (document 1)",
            "manifests[1] (document 0)",
        ),
    )


def test_every_bad_document_is_named_not_just_the_first() -> None:
    with pytest.raises(InvalidManifestsError) as failure:
        parse_manifests(["a: [", "ok: 1\n---\n- 1\n"])
    assert [e.split(":")[0] for e in failure.value.errors] == [
        "manifests[0] (document 0)",
        "manifests[1] (document 1)",
    ]


def test_empty_texts_and_empty_documents_give_nothing() -> None:
    assert parse_manifests(["", "---\n---\n"]) == Given((), ())


DELETING = {**obj("ModelDeployment", "old", "ml")}
DELETING["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [("ml", "old", True), ("ml", "chat", False), ("ml", "nope", False), ("other", "old", False)],
    ids=[
        "a deployment with a deletionTimestamp is being deleted",
        "one without is not",
        "an unknown one is not",
        "the same name in another namespace is not",
    ],
)
def test_being_deleted(namespace: str, name: str, expected: bool) -> None:
    observed = [DELETING, obj("ModelDeployment", "chat", "ml")]
    assert being_deleted(observed, namespace, name) is expected
