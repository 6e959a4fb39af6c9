"""Every documentation manifest of our kinds is accepted as written."""

from __future__ import annotations

import copy

import pytest
from modelplane.api import KINDS, validate

from tests.api.seed import SeedDoc, documents, require_seed, uncommented_variants

DOCS = documents()
VARIANTS = uncommented_variants()


def _ids(docs: list[SeedDoc]) -> list[str]:
    return [d.name for d in docs]


def test_the_seed_manifests_are_present_and_cover_every_kind() -> None:
    require_seed()
    assert {d.raw["kind"] for d in DOCS} == set(KINDS)


def test_every_commented_out_optional_block_is_found() -> None:
    require_seed()
    assert {(d.raw["kind"]) for d in VARIANTS} == {
        "ModelCache",
        "ModelDeployment",
        "InferenceCluster",
    }


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_a_seed_manifest_is_accepted_as_written(doc: SeedDoc) -> None:
    _, errors = validate(doc.raw)
    assert [str(e) for e in errors] == []


@pytest.mark.parametrize("doc", VARIANTS, ids=_ids(VARIANTS))
def test_a_seed_manifest_with_its_commented_out_block_is_accepted(doc: SeedDoc) -> None:
    _, errors = validate(doc.raw)
    assert [str(e) for e in errors] == []


def test_an_existing_cluster_may_name_its_cache_storage_class() -> None:
    require_seed()
    existing = [d for d in DOCS if d.raw["spec"].get("cluster", {}).get("source") == "Existing"]
    assert existing
    raw = copy.deepcopy(existing[0].raw)
    raw["spec"]["cluster"]["existing"]["cache"] = {"storageClassName": "weka-rwx"}
    _, errors = validate(raw)
    assert [str(e) for e in errors] == []
