"""FLEET.yaml: one entry per valid InferenceCluster; errors name the file, document, object and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelplane_localfleet.fleetfile import ClusterEntry, FleetFileError, read
from modelplane_localfleet.layout import Secret

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "manifests"


def _without_pools(entries: list[ClusterEntry]) -> list[ClusterEntry]:
    return [ClusterEntry(e.name, e.source, e.secret) for e in entries]


def test_the_example_fleet_gives_its_three_existing_clusters_with_their_secrets() -> None:
    assert _without_pools(read([ROOT / "examples" / "fleet"])) == [
        ClusterEntry("us-east", "Existing", Secret("us-east-kubeconfig", "kubeconfig")),
        ClusterEntry("us-west", "Existing", Secret("us-west-kubeconfig", "kubeconfig")),
        ClusterEntry("eu-central", "Existing", Secret("eu-central-kubeconfig", "kubeconfig")),
    ]


def test_the_documentations_existing_cluster_names_its_secret_and_key() -> None:
    entries = read(
        [
            SEED / "concepts" / "inference-cluster-existing.yaml",
            SEED / "concepts" / "inference-class-h100-byo.yaml",
        ]
    )
    assert _without_pools(entries) == [
        ClusterEntry("byo-us-east", "Existing", Secret("byo-cluster-kubeconfig", "kubeconfig"))
    ]


def test_each_pool_carries_its_node_count_and_its_class_devices() -> None:
    entries = read(
        [
            SEED / "concepts" / "inference-cluster-existing.yaml",
            SEED / "concepts" / "inference-class-h100-byo.yaml",
        ]
    )
    pools = entries[0].pools
    assert [(p.class_name, [(d.name, d.claim, d.count) for d in p.devices]) for p in pools] == [
        ("h100-8x-byo", [("gpu", "DRA", 8), ("nic", "Synthetic", 8)])
    ]


def test_a_provisioned_cluster_runs_without_a_secret() -> None:
    entries = read(
        [
            SEED / "concepts" / "inference-cluster-gke.yaml",
            SEED / "concepts" / "inference-class-gke-l4.yaml",
        ]
    )
    assert [(e.source, e.secret) for e in entries] == [("GKE", None)]


def test_a_pool_whose_class_is_not_in_the_files_is_an_error_naming_the_field() -> None:
    with pytest.raises(FleetFileError) as raised:
        read([SEED / "concepts" / "inference-cluster-gke.yaml"])
    assert str(raised.value) == (
        f"{SEED / 'concepts' / 'inference-cluster-gke.yaml'} (document 0): "
        "InferenceCluster/gke-us-central spec.nodePools[0].className: "
        "InferenceClass 'gke-l4-1x-g2' is not in the fleet files"
    )


def test_invalid_clusters_are_reported_with_file_document_object_and_field(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "apiVersion: modelplane.ai/v1alpha1\nkind: InferenceCluster\nmetadata: {name: broken}\n"
        "spec: {cluster: {source: Existing}, nodePools: [{name: a, className: c, nodeCount: 1}]}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n"
    )
    with pytest.raises(FleetFileError) as raised:
        read([fleet])
    message = str(raised.value)
    assert f"{fleet} (document 0)" in message
    assert "InferenceCluster broken" in message
    assert "spec.cluster" in message
    assert "ConfigMap" not in message


def test_a_cluster_defined_twice_is_an_error(tmp_path: Path) -> None:
    cluster = (ROOT / "examples" / "fleet" / "20-clusters.yaml").read_text()
    (tmp_path / "a.yaml").write_text(cluster)
    (tmp_path / "b.yaml").write_text(cluster)
    with pytest.raises(FleetFileError, match="us-east is defined twice"):
        read([tmp_path])


def test_a_pool_named_system_is_refused_since_every_cluster_has_a_system_node(
    tmp_path: Path,
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "apiVersion: modelplane.ai/v1alpha1\nkind: InferenceClass\nmetadata: {name: c}\n"
        "spec: {devices: [{name: gpu, driver: gpu.nvidia.com, deviceClassName: gpu, count: 1}]}\n"
        "---\n"
        "apiVersion: modelplane.ai/v1alpha1\nkind: InferenceCluster\nmetadata: {name: east}\n"
        "spec: {cluster: {source: Existing, existing: {secretRef: {name: k, key: kubeconfig}}},"
        " nodePools: [{name: system, className: c, nodeCount: 1}]}\n"
    )
    with pytest.raises(FleetFileError) as raised:
        read([fleet])
    assert str(raised.value) == (
        f"{fleet} (document 1): InferenceCluster/east spec.nodePools[0].name: "
        "'system' is the local fleet's system node; name the pool else"
    )
