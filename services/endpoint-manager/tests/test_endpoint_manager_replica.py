"""endpoint-manager's per-replica decision: conditions, the ModelEndpoint, the drain order."""

from __future__ import annotations

import datetime
from typing import Any

from endpoint_manager.replica import (
    DRAIN_S,
    SOON_WINDOW_S,
    Observed,
    decide,
    endpoint_for,
    expects_change,
    gateway_url,
    workload_problem,
)

NOW = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)
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


def conditions(status: Json) -> dict[str, Json]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_ready_and_reachable_replica_gets_its_endpoint_and_address() -> None:
    seen = Observed(
        cluster=CLUSTER, deployment=DEPLOYMENT, workloads=(deployment_workload(1),), healthy=True
    )
    decision = decide(replica(), seen, NOW)
    found = conditions(decision.status)
    assert found["Synced"]["status"] == "True"
    assert found["Ready"]["status"] == "True", found["Ready"]
    assert decision.status["address"] == "http://10.1.0.2/ml/qwen-east-0"
    assert decision.status["observedGeneration"] == 3
    endpoint = decision.endpoint
    assert endpoint is not None
    assert endpoint["spec"] == {"url": "http://10.1.0.2", "rewritePath": "/ml/qwen-east-0/"}
    labels = endpoint["metadata"]["labels"]
    assert labels["modelplane.ai/deployment"] == "qwen"
    assert labels["modelplane.ai/cluster"] == "east"
    assert labels["team"] == "ml" and labels["tier"] == "gold"
    owner = endpoint["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("ModelReplica", "u-1", True)
    assert not decision.teardown and not decision.release


def test_the_platform_labels_win_over_a_deployment_label_of_the_same_key() -> None:
    sneaky = {"metadata": {"name": "qwen", "labels": {"modelplane.ai/cluster": "west"}}}
    endpoint = endpoint_for(replica(), sneaky, "http://10.1.0.2")
    assert endpoint["metadata"]["labels"]["modelplane.ai/cluster"] == "east"


def test_no_endpoint_while_pods_start_or_the_gateway_path_fails() -> None:
    starting = Observed(cluster=CLUSTER, workloads=(deployment_workload(0),), healthy=None)
    decision = decide(replica(), starting, NOW)
    ready = conditions(decision.status)["Ready"]
    assert decision.endpoint is None
    assert (ready["status"], ready["reason"]) == ("False", "WorkloadNotReady")
    assert "0 of 1 ready" in ready["message"]
    assert "address" not in decision.status

    unreachable = Observed(cluster=CLUSTER, workloads=(deployment_workload(1),), healthy=False)
    decision = decide(replica(), unreachable, NOW)
    ready = conditions(decision.status)["Ready"]
    assert decision.endpoint is None
    assert ready["reason"] == "Unreachable"
    assert "GET http://10.1.0.2/ml/qwen-east-0/health" in ready["message"]


def test_failures_to_apply_name_the_replica_and_what_failed() -> None:
    failed = Observed(cluster=CLUSTER, sync_error="applying on east: UNAVAILABLE", workloads=())
    synced = conditions(decide(replica(), failed, NOW).status)["Synced"]
    assert (synced["status"], synced["reason"]) == ("False", "ApplyFailed")
    assert synced["message"] == "ModelReplica ml/qwen-east-0: applying on east: UNAVAILABLE"

    odd = Observed(cluster=CLUSTER, sync_error="spec.serving.mode: no", unsupported=True)
    assert conditions(decide(replica(), odd, NOW).status)["Synced"]["reason"] == "Unsupported"

    nowhere = decide(replica(), Observed(cluster=None), NOW)
    synced = conditions(nowhere.status)["Synced"]
    assert synced["reason"] == "ClusterNotFound" and "spec.clusterName 'east'" in synced["message"]
    assert nowhere.endpoint is None and not nowhere.release


def test_a_transition_time_is_kept_while_the_status_holds() -> None:
    seen = Observed(cluster=CLUSTER, workloads=(deployment_workload(1),), healthy=True)
    first = decide(replica(), seen, NOW)
    later = NOW + datetime.timedelta(minutes=5)
    again = decide({**replica(), "status": first.status}, seen, later)
    assert again.status == first.status


def test_deletion_withdraws_the_endpoint_then_drains_then_tears_down_then_releases() -> None:
    began = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    deleting = replica(deletionTimestamp=began, finalizers=["modelplane.ai/endpoint-manager"])
    endpoint = endpoint_for(deleting, DEPLOYMENT, "http://10.1.0.2")
    live = (deployment_workload(1),)

    step = decide(deleting, Observed(cluster=CLUSTER, endpoint=endpoint, workloads=live), NOW)
    assert step.endpoint is None and not step.teardown and not step.release
    assert conditions(step.status)["Ready"]["reason"] == "Deleting"

    soon = NOW + datetime.timedelta(seconds=DRAIN_S / 2)
    step = decide(deleting, Observed(cluster=CLUSTER, workloads=live), soon)
    assert not step.teardown, "the front door gets DRAIN_S to stop sending"

    after = NOW + datetime.timedelta(seconds=DRAIN_S)
    step = decide(deleting, Observed(cluster=CLUSTER, workloads=live), after)
    assert step.teardown and not step.release

    step = decide(deleting, Observed(cluster=CLUSTER, workloads=()), after)
    assert step.teardown and step.release

    unread = decide(deleting, Observed(cluster=CLUSTER, workloads=None), after)
    assert not unread.release, "never released while the cluster cannot be read"


def test_the_drain_counts_from_a_late_withdrawal_not_from_the_deletion() -> None:
    began = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    deleting = replica(deletionTimestamp=began, finalizers=["modelplane.ai/endpoint-manager"])
    live = (deployment_workload(1),)
    withdrawn = NOW + datetime.timedelta(seconds=4)
    seen = Observed(cluster=CLUSTER, workloads=live, withdrawn_at=withdrawn)
    step = decide(deleting, seen, NOW + datetime.timedelta(seconds=DRAIN_S))
    assert not step.teardown, "only DRAIN_S - 4 s since the endpoint went"
    step = decide(deleting, seen, withdrawn + datetime.timedelta(seconds=DRAIN_S))
    assert step.teardown


def test_a_replica_whose_cluster_is_gone_is_released_without_teardown() -> None:
    deleting = replica(deletionTimestamp=NOW.strftime("%Y-%m-%dT%H:%M:%SZ"))
    step = decide(deleting, Observed(cluster=None), NOW)
    assert step.release and not step.teardown


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


def test_a_starting_or_draining_replica_expects_a_change_soon_within_a_window() -> None:
    created = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    starting = replica()
    starting["metadata"]["creationTimestamp"] = created
    waiting = decide(starting, Observed(cluster=CLUSTER, workloads=(deployment_workload(0),)), NOW)
    assert waiting.endpoint is None and expects_change(starting, waiting, NOW)
    later = NOW + datetime.timedelta(seconds=SOON_WINDOW_S)
    assert not expects_change(starting, waiting, later), "broken for long: ordinary resync"

    serving = Observed(cluster=CLUSTER, deployment=DEPLOYMENT, workloads=(deployment_workload(1),),
                       healthy=True)  # fmt: skip
    up = decide(starting, serving, NOW)
    assert up.endpoint is not None and not expects_change(starting, up, NOW)

    deleting = replica(deletionTimestamp=created, finalizers=["modelplane.ai/endpoint-manager"])
    draining = decide(deleting, Observed(cluster=CLUSTER, workloads=(deployment_workload(1),)), NOW)
    assert expects_change(deleting, draining, NOW)
    released = decide(deleting, Observed(cluster=None), NOW)
    assert released.release and not expects_change(deleting, released, NOW)
