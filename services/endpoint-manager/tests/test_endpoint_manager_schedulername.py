"""Pods of a replica name the `modelplane` scheduler (the one with the scheduler extender)
when its cluster reports the extension Healthy as its workloads are created, and keep
whatever they were created with while the extension's health changes."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from endpoint_manager.decide import Observed, decide
from endpoint_manager.schedulername import scheduler_name

Json = dict[str, Any]
NOW = datetime.datetime(2026, 12, 3, 18, 0, tzinfo=datetime.UTC)


def member(role: str, **extra: Any) -> Json:
    return {
        "role": role,
        "nodePoolName": "h100",
        "deviceRequests": [{"name": "gpu", "count": 2, "deviceClassName": "gpu.nvidia.com"}],
        "template": {"spec": {"containers": [{"name": "engine", "image": "engine:1"}]}},
        **extra,
    }


def replica(*members: Json) -> Json:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelReplica",
        "metadata": {"name": "qwen-east-0", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {
            "clusterName": "east",
            "deploymentName": "qwen",
            "index": 0,
            "engines": [{"name": "qwen", "copies": 1, "nodePoolName": "h100",
                         "members": list(members) or [member("Standalone")]}],
        },
    }  # fmt: skip


def cluster(health: str | None) -> Json:
    status = {"schedulerExtension": {"health": health, "accounting": "Device"}} if health else {}
    return {"metadata": {"name": "east"}, "spec": {}, "status": status}


def pod_specs(objects: tuple[Json, ...]) -> list[Json]:
    specs = []
    for obj in objects:
        if obj["kind"] == "Deployment":
            specs.append(obj["spec"]["template"]["spec"])
        if obj["kind"] == "LeaderWorkerSet":
            group = obj["spec"]["leaderWorkerTemplate"]
            specs += [group["leaderTemplate"]["spec"], group["workerTemplate"]["spec"]]
    return specs


def applied(replica_obj: Json, health: str | None, remote: Any = None) -> list[str | None]:
    decision = decide(replica_obj, Observed(cluster=cluster(health), remote=remote), NOW)
    assert decision.apply, decision
    return [spec.get("schedulerName") for spec in pod_specs(decision.apply)]


@pytest.mark.parametrize(
    ("health", "expected"),
    [("Healthy", "modelplane"), ("Unhealthy", None), ("Absent", None), (None, None)],
)
def test_a_new_workload_names_the_modelplane_scheduler_only_while_the_extension_is_healthy(
    health: str | None, expected: str | None
) -> None:
    assert applied(replica(), health) == [expected]


def test_every_pod_of_a_gang_names_it() -> None:
    gang = replica(member("Leader"), member("Worker", worker={"nodes": 2}))
    assert applied(gang, "Healthy") == ["modelplane", "modelplane"]


def test_a_scheduler_the_template_names_is_kept() -> None:
    own = member("Standalone")
    own["template"]["spec"]["schedulerName"] = "volcano"
    assert applied(replica(own), "Healthy") == ["volcano"]


def workload(scheduler: str | None) -> Json:
    spec: Json = {"containers": []}
    if scheduler:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"template": {"spec": spec}}}  # fmt: skip


@pytest.mark.parametrize(
    ("created_with", "health_now"),
    [("modelplane", "Unhealthy"), (None, "Healthy"), ("modelplane", "Healthy"), (None, None)],
)
def test_the_choice_sticks_to_what_the_workload_was_created_with(
    created_with: str | None, health_now: str | None
) -> None:
    assert scheduler_name(cluster(health_now), [workload(created_with)]) == created_with


def test_a_gangs_leaderworkerset_is_read_as_well() -> None:
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
           "metadata": {"name": "w"},
           "spec": {"leaderWorkerTemplate": {
               "leaderTemplate": {"spec": {"schedulerName": "modelplane"}},
               "workerTemplate": {"spec": {"schedulerName": "modelplane"}}}}}  # fmt: skip
    assert scheduler_name(cluster("Unhealthy"), [lws]) == "modelplane"
