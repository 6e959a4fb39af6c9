"""endpoint-manager's per-replica helpers: addresses, readiness of workloads, the endpoint."""

from __future__ import annotations

from typing import Any

from endpoint_manager.replica import (
    cluster_lost,
    endpoint_for,
    gateway_url,
    same_endpoint,
    workload_problem,
)

Json = dict[str, Any]


def replica(**meta: Any) -> Json:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelReplica",
        "metadata": {
            "name": "qwen-east-0",
            "namespace": "ml",
            "uid": "u-1",
            "generation": 3,
            **meta,
        },
        "spec": {"clusterName": "east", "deploymentName": "qwen", "index": 0, "engines": []},
    }


CLUSTER: Json = {"metadata": {"name": "east"}, "status": {"gatewayAddress": "10.1.0.2"}}
DEPLOYMENT: Json = {"metadata": {"name": "qwen", "labels": {"team": "ml", "tier": "gold"}}}


def deployment_workload(ready: int, wanted: int = 1, generation: int = 1) -> Json:
    return {
        "kind": "Deployment",
        "metadata": {"name": "qwen-east-0-engine", "namespace": "ml", "generation": generation},
        "spec": {"replicas": wanted},
        "status": {
            "observedGeneration": generation,
            "readyReplicas": ready,
            "updatedReplicas": wanted,
        },
    }


def test_the_platform_labels_win_over_a_deployment_label_of_the_same_key() -> None:
    sneaky = {"metadata": {"name": "qwen", "labels": {"modelplane.ai/cluster": "west"}}}
    endpoint = endpoint_for(replica(), sneaky, "http://10.1.0.2")
    assert endpoint["metadata"]["labels"]["modelplane.ai/cluster"] == "east"


def test_gateway_urls_and_workload_problems() -> None:
    assert gateway_url(CLUSTER) == "http://10.1.0.2"
    assert gateway_url({"status": {"gatewayAddress": "https://gw.example:8443/"}}) == (
        "https://gw.example:8443"
    )
    assert gateway_url({"status": {}}) is None
    assert gateway_url(None) is None
    assert workload_problem(deployment_workload(1)) is None
    stale = deployment_workload(1, generation=2)
    stale["status"]["observedGeneration"] = 1
    assert "not rolled out" in str(workload_problem(stale))
    assert workload_problem(deployment_workload(1, wanted=2)) == (
        "Deployment ml/qwen-east-0-engine: 1 of 2 ready"
    )


def test_an_endpoint_is_the_same_when_its_spec_and_the_wanted_labels_match() -> None:
    wanted = endpoint_for(replica(), DEPLOYMENT, "http://10.1.0.2")
    existing = {
        **wanted,
        "metadata": {
            **wanted["metadata"],
            "labels": {**wanted["metadata"]["labels"], "extra": "x"},
        },
    }
    assert same_endpoint(existing, wanted)
    moved = {**wanted, "spec": {"url": "http://10.9.9.9", "rewritePath": "/ml/qwen-east-0/"}}
    assert not same_endpoint(moved, wanted)
    relabelled = {**wanted, "metadata": {**wanted["metadata"], "labels": {"team": "ml"}}}
    assert not same_endpoint(relabelled, wanted)


def test_a_cluster_is_lost_only_when_being_deleted_and_unreachable() -> None:
    unreachable = {
        "conditions": [{"type": "Ready", "status": "False", "reason": "ClusterUnreachable"}]
    }
    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}
    going = {"name": "east", "deletionTimestamp": "2026-11-29T12:00:00Z"}
    assert cluster_lost({"metadata": going, "status": unreachable})
    assert not cluster_lost({"metadata": going, "status": ready})
    assert not cluster_lost({"metadata": going})
    assert not cluster_lost({"metadata": {"name": "east"}, "status": unreachable})
