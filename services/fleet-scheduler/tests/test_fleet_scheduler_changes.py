"""Which changes queue a fleet-scheduler pass: not the status it wrote itself, nor a
replica's progress short of Ready; a spec or label edit, a replica turning Ready, a
cluster's status, a new or a deleted object do."""

from __future__ import annotations

import copy
from typing import Any, cast

from fleet_scheduler.changes import Relevance
from fleet_scheduler.controller import KINDS, watched_paths
from modelplane.cache import Cache, Lister
from modelplane.loop import ALL

API = "/apis/modelplane.ai/v1alpha1"
DEPLOYMENTS = f"{API}/{KINDS['ModelDeployment']}"
REPLICAS = f"{API}/{KINDS['ModelReplica']}"
CLUSTERS = f"{API}/{KINDS['InferenceCluster']}"


def obj(kind: str, name: str, version: int, **fields: Any) -> dict[str, Any]:
    meta = {"name": name, "uid": f"uid-{kind}-{name}", "resourceVersion": str(version),
            "generation": 1, "managedFields": [{"manager": "x", "time": str(version)}]}  # fmt: skip
    if kind != "InferenceCluster":
        meta["namespace"] = "ml"
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": kind, "metadata": meta, **fields}


class Watched:
    """A real `Cache` fed watch events by hand, and the keys each event queued."""

    def __init__(self) -> None:
        self.cache = Cache(cast(Lister, None), watched_paths())
        self.relevance = Relevance(self.cache)
        self.queued: list[tuple[str, ...]] = []
        self.cache.listeners.append(
            lambda path, o: self.queued.append(tuple(self.relevance.keys(path, o)))
        )

    def event(self, path: str, kind: str, body: dict[str, Any]) -> tuple[str, ...]:
        self.cache.informers[path].apply({"type": kind, "object": copy.deepcopy(body)})
        return self.queued[-1]


def test_a_deployments_own_status_write_queues_no_pass_but_its_spec_and_labels_do() -> None:
    watched = Watched()
    spec = {"replicas": 1}
    assert watched.event(DEPLOYMENTS, "ADDED", obj("ModelDeployment", "chat", 1, spec=spec)) == (
        ALL,
    )
    status = {"observedGeneration": 1, "replicas": 0}
    written = obj("ModelDeployment", "chat", 2, spec=spec, status=status)
    assert watched.event(DEPLOYMENTS, "MODIFIED", written) == ()
    scaled = obj("ModelDeployment", "chat", 3, spec={"replicas": 2}, status=status)
    scaled["metadata"]["generation"] = 2
    assert watched.event(DEPLOYMENTS, "MODIFIED", scaled) == (ALL,)
    labelled = copy.deepcopy(scaled)
    labelled["metadata"].update(resourceVersion="4", labels={"team": "a"})
    assert watched.event(DEPLOYMENTS, "MODIFIED", labelled) == (ALL,)
    labelled["metadata"]["resourceVersion"] = "5"
    assert watched.event(DEPLOYMENTS, "DELETED", labelled) == (ALL,), "a deletion always counts"


def test_a_replica_queues_a_pass_when_it_turns_ready_not_for_other_progress() -> None:
    watched = Watched()
    spec = {"clusterName": "east", "deploymentName": "chat", "index": 0}
    assert watched.event(REPLICAS, "ADDED", obj("ModelReplica", "chat-east-0", 1, spec=spec)) == (
        ALL,
    )
    synced = {"conditions": [{"type": "Synced", "status": "True"},
                             {"type": "Ready", "status": "False", "reason": "WorkloadNotReady"}]}  # fmt: skip
    progress = obj("ModelReplica", "chat-east-0", 2, spec=spec, status=synced)
    progress["metadata"]["finalizers"] = ["modelplane.ai/endpoint-manager"]
    assert watched.event(REPLICAS, "MODIFIED", progress) == (ALL,), "metadata changed"
    progress["metadata"]["resourceVersion"] = "3"
    progress["status"]["conditions"][1]["reason"] = "ProbeFailed"
    assert watched.event(REPLICAS, "MODIFIED", progress) == ()
    progress["metadata"]["resourceVersion"] = "4"
    progress["status"]["conditions"][1].update(status="True", reason="Serving")
    assert watched.event(REPLICAS, "MODIFIED", progress) == (ALL,)


def test_a_clusters_status_change_queues_a_pass_its_bookkeeping_does_not() -> None:
    watched = Watched()
    ready = {"conditions": [{"type": "Ready", "status": "True"}], "gatewayAddress": "10.0.0.2"}
    cluster = obj("InferenceCluster", "east", 1, spec={"nodePools": []}, status=ready)
    assert watched.event(CLUSTERS, "ADDED", cluster) == (ALL,)
    cluster["metadata"].update(resourceVersion="2", managedFields=[{"manager": "y"}])
    assert watched.event(CLUSTERS, "MODIFIED", cluster) == ()
    cluster["metadata"]["resourceVersion"] = "3"
    cluster["status"]["conditions"][0]["status"] = "False"
    assert watched.event(CLUSTERS, "MODIFIED", cluster) == (ALL,)
