"""endpoint-manager's whole decision for one ModelReplica (pure): named cases, whole outputs.

Expected statuses, endpoints and object references are written out here. The
objects to apply are what `workload.render` makes of the replica (tested on its
own in test_endpoint_manager_workload.py): `decide` passes them through whole.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest
from endpoint_manager.decide import (
    Applied,
    Decision,
    Health,
    Observed,
    decide,
    probe_interval,
)
from endpoint_manager.workload import render

Json = dict[str, Any]
T0 = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)
STAMP = "2026-11-29T12:00:00Z"
FINALIZER = "modelplane.ai/endpoint-manager"
NAME = "ModelReplica ml-team/qwen-east-0"
RCT, DEPLOYMENT_NAME, SERVICE = "qwen-east-0-qwen-ce0c9e24", "qwen-east-0-qwen", "qwen-east-0"
URL = "http://10.1.0.2"
ADDRESS = "http://10.1.0.2/ml-team/qwen-east-0"


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- builders ---------------------------------------------------------------------------


def replica(
    *,
    finalizers: tuple[str, ...] = (FINALIZER,),
    status: Json | None = None,
    applied_on: str | None = "east",
    **meta: Any,
) -> Json:
    """ModelReplica qwen-east-0 (generation 3, created 10 minutes before T0) as the
    fleet-scheduler writes it: one Standalone engine on pool l4 claiming one Ada GPU;
    annotated as applied on `applied_on` (None: not annotated)."""
    annotations = {} if applied_on is None else {"modelplane.ai/applied-on": applied_on}
    out: Json = {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelReplica",
        "metadata": {
            "name": "qwen-east-0",
            "namespace": "ml-team",
            "uid": "u-7",
            "generation": 3,
            "creationTimestamp": stamp(-600),
            "finalizers": list(finalizers),
            "labels": {"modelplane.ai/deployment": "qwen", "modelplane.ai/cluster": "east"},
            "annotations": annotations,
            **meta,
        },
        "spec": {
            "clusterName": "east",
            "deploymentName": "qwen",
            "index": 0,
            "serving": {"mode": "Unified"},
            "engines": [{
                "name": "qwen", "copies": 1, "nodePoolName": "l4", "nodeCost": 1,
                "members": [{
                    "role": "Standalone", "nodePoolName": "l4",
                    "deviceRequests": [{
                        "name": "gpu", "count": 1, "deviceClassName": "gpu.nvidia.com",
                        "selectors": [{"cel": 'device.attributes["gpu.nvidia.com"]'
                                              '.architecture == "Ada Lovelace"'}],
                    }],
                    "template": {"spec": {"containers": [
                        {"name": "engine", "image": "vllm/vllm-openai:v0.23.0"}]}},
                }],
            }],
        },
    }  # fmt: skip
    if status is not None:
        out["status"] = status
    return out


def cond(type_: str, ok: bool, reason: str, message: str) -> Json:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": 3,
        "lastTransitionTime": STAMP,
    }


def status(*conditions: Json, address: str | None = None) -> Json:
    return {"conditions": list(conditions), "observedGeneration": 3, "address": address}


SYNCED = cond("Synced", True, "Applied", f"{NAME}: applied on east")
SERVING = cond("Ready", True, "Serving", f"{NAME}: serving at {ADDRESS}")
SERVING_STATUS = status(SERVING, SYNCED, address=ADDRESS)


def obj(api_version: str, kind: str, name: str, generation: int = 1, **extra: Any) -> Json:
    """An object on east labelled as qwen-east-0's, as the watch cache holds it."""
    meta = {
        "name": name,
        "namespace": "ml-team",
        "generation": generation,
        "labels": {"app.kubernetes.io/managed-by": "modelplane-endpoint-manager",
                   "modelplane.ai/replica": "qwen-east-0"},
        **extra.pop("meta", {}),
    }  # fmt: skip
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}


def workload(ready: int, generation: int = 1, **meta: Any) -> Json:
    return obj(
        "apps/v1", "Deployment", DEPLOYMENT_NAME, generation,
        meta=meta,
        spec={"replicas": 1},
        status={"observedGeneration": generation, "readyReplicas": ready, "updatedReplicas": 1},
    )  # fmt: skip


ROUTE = obj("gateway.networking.k8s.io/v1", "HTTPRoute", SERVICE)
SVC = obj("v1", "Service", SERVICE)
CLAIM = obj("resource.k8s.io/v1", "ResourceClaimTemplate", RCT)
REMOTE = (CLAIM, workload(1), SVC, ROUTE)
RETURNED = (("Namespace", "ml-team", 0), ("ResourceClaimTemplate", RCT, 1),
            ("Deployment", DEPLOYMENT_NAME, 1), ("Service", SERVICE, 1), ("HTTPRoute", SERVICE, 1))  # fmt: skip
APPLIED = Applied(3, at(-30), None, RETURNED)
HEALTHY = Health(True, at(-1))
CLUSTER: Json = {
    "metadata": {"name": "east"},
    "status": {"gatewayAddress": "10.1.0.2",
               "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]},
}  # fmt: skip
DEPLOYMENT: Json = {"metadata": {"name": "qwen", "labels": {"team": "ml"}}}
ENDPOINT: Json = {
    "apiVersion": "modelplane.ai/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {
        "name": "qwen-east-0",
        "namespace": "ml-team",
        "labels": {"team": "ml", "modelplane.ai/deployment": "qwen",
                   "modelplane.ai/cluster": "east",
                   "app.kubernetes.io/managed-by": "modelplane-endpoint-manager"},
        "ownerReferences": [{"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
                             "name": "qwen-east-0", "uid": "u-7", "controller": True,
                             "blockOwnerDeletion": True}],
    },
    "spec": {"url": URL, "rewritePath": "/ml-team/qwen-east-0/"},
}  # fmt: skip


DOWN = "applying on east: UNAVAILABLE: down"
NEVER_PROVISIONED: Json = {
    "metadata": {"name": "east"},
    "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NotProvisioned",
                               "message": "source GKE is not provisioned yet"}]},
}  # fmt: skip
NO_KUBECONFIG = Applied(
    3, at(-1), "applying on east: cluster east: source GKE is not provisioned yet, so it has "
    "no kubeconfig", reached=False,
)  # fmt: skip


def seen(**overrides: Any) -> Observed:
    """A replica at rest: cluster, deployment, endpoint, cache synced, applied, healthy."""
    base: Json = {"cluster": CLUSTER, "deployment": DEPLOYMENT, "endpoint": ENDPOINT,
                  "remote": REMOTE, "applied": APPLIED, "health": HEALTHY}  # fmt: skip
    return Observed(**{**base, **overrides})


def with_spec(change: Json) -> Json:
    out = replica()
    out["spec"] = {**copy.deepcopy(out["spec"]), **change}
    return out


RENDERED = render(replica()).objects
HYDRATING = (f"{NAME}: waiting for ModelCache ml-team/qwen-weights on east: Hydrating, "
             "300 of 1200 bytes (25%): downloading")  # fmt: skip


def model_cache(phase: str, message: str) -> Json:
    """ModelCache qwen-weights with an entry for east (and a Ready one for west)."""
    return {"metadata": {"name": "qwen-weights", "namespace": "ml-team"}, "status": {"clusters": [
        {"clusterName": "west", "phase": "Ready", "bytesDone": 1200, "bytesTotal": 1200},
        {"clusterName": "east", "phase": phase, "message": message, "commit": "c0ffee",
         "bytesDone": 1200 if phase == "Ready" else 300, "bytesTotal": 1200},
    ]}}  # fmt: skip


ROUTE_REF = ("gateway.networking.k8s.io/v1", "HTTPRoute", "ml-team", SERVICE)
SVC_REF = ("v1", "Service", "ml-team", SERVICE)
DEPLOYMENT_REF = ("apps/v1", "Deployment", "ml-team", DEPLOYMENT_NAME)
CLAIM_REF = ("resource.k8s.io/v1", "ResourceClaimTemplate", "ml-team", RCT)
DELETING = replica(deletionTimestamp=STAMP)


def deleting(message: str, when: float = 0) -> Json:
    """The status of a replica being deleted, its Ready condition written `when` s after T0."""
    ready = cond("Ready", False, "Deleting", f"{NAME}: {message}")
    return status({**ready, "lastTransitionTime": stamp(when)})


LIVE: list[tuple[str, Json, Observed, datetime.datetime, Decision]] = [
    ("a new replica gets its finalizer and its objects, and no status until the apply is done",
     replica(finalizers=()), seen(endpoint=None, remote=None, applied=None, health=None), T0,
     Decision(add_finalizer=True, apply=RENDERED)),
    ("a replica whose generation moved on is applied again",
     replica(status=SERVING_STATUS), seen(applied=Applied(2, at(-30), None, RETURNED)), T0,
     Decision(apply=RENDERED)),
    ("a serving replica whose status and endpoint already say so changes nothing",
     replica(status=SERVING_STATUS), seen(), T0, Decision()),
    ("a ready replica never probed is probed before anything is said of it",
     replica(), seen(endpoint=None, health=None), T0,
     Decision(probe=f"{ADDRESS}/health")),
    ("a ready replica whose probe answered is Serving and publishes its endpoint",
     replica(), seen(endpoint=None), T0,
     Decision(publish=ENDPOINT, status=SERVING_STATUS)),
    ("a serving replica is probed again once its spread interval (at most 12.5 s) passed",
     replica(status=SERVING_STATUS), seen(health=Health(True, at(-13))), T0,
     Decision(probe=f"{ADDRESS}/health")),
    ("a failed probe makes it Unreachable and withdraws its endpoint",
     replica(status=SERVING_STATUS), seen(health=Health(False, at(-0.5))), T0,
     Decision(withdraw=True, status=status(
         cond("Ready", False, "Unreachable", f"{NAME}: GET {ADDRESS}/health did not answer 200"),
         SYNCED))),
    ("a failed probe is tried again after a second",
     replica(), seen(endpoint=None, health=Health(False, at(-1))), T0,
     Decision(probe=f"{ADDRESS}/health")),
    ("pods not ready yet: WorkloadNotReady naming the workload, soon looked at while new",
     replica(creationTimestamp=stamp(-30)), seen(endpoint=None, remote=(CLAIM, workload(0), SVC, ROUTE)), T0,
     Decision(soon=True, status=status(
         cond("Ready", False, "WorkloadNotReady", f"Deployment ml-team/{DEPLOYMENT_NAME}: 0 of 1 ready"),
         SYNCED))),
    ("a workload not on the cluster yet just after the apply is waited for, not applied again",
     replica(), seen(endpoint=None, remote=(), applied=Applied(3, at(-1), None, RETURNED)), T0,
     Decision(status=status(
         cond("Ready", False, "WorkloadNotReady", f"{NAME}: no Deployment {DEPLOYMENT_NAME} on east yet"),
         SYNCED))),
    ("an object deleted on the cluster is applied again once the apply settled",
     replica(status=SERVING_STATUS), seen(remote=(CLAIM, workload(1), SVC)), T0,
     Decision(apply=RENDERED)),
    ("an object edited on the cluster (its generation moved past the apply's) is applied again",
     replica(status=SERVING_STATUS), seen(remote=(CLAIM, workload(1, generation=2), SVC, ROUTE)), T0,
     Decision(apply=RENDERED)),
    ("an object the replica no longer renders is pruned",
     replica(status=SERVING_STATUS),
     seen(remote=(*REMOTE, obj("resource.k8s.io/v1", "ResourceClaimTemplate", "qwen-east-0-qwen-old"))), T0,
     Decision(prune=(("resource.k8s.io/v1", "ResourceClaimTemplate", "ml-team", "qwen-east-0-qwen-old"),))),
    ("a failed apply says why, and is not tried again within 2 s",
     replica(), seen(endpoint=None, applied=Applied(3, at(-1), "applying on east: UNAVAILABLE: down")), T0,
     Decision(status=status(
         cond("Ready", False, "WorkloadNotReady", f"{NAME}: applying on east: UNAVAILABLE: down"),
         cond("Synced", False, "ApplyFailed", f"{NAME}: applying on east: UNAVAILABLE: down")))),
    ("a failed apply is tried again after 2 s",
     replica(), seen(endpoint=None, applied=Applied(3, at(-2), "applying on east: UNAVAILABLE: down")), T0,
     Decision(apply=RENDERED)),
    ("while the cluster's watch cache has not synced (a restart), a serving replica stays as it is",
     replica(status=SERVING_STATUS), seen(remote=None), T0, Decision()),
    ("while the cluster's watch cache has not synced, the health probe alone decides",
     replica(status=SERVING_STATUS), seen(remote=None, health=Health(False, at(-0.5))), T0,
     Decision(withdraw=True, status=status(
         cond("Ready", False, "Unreachable", f"{NAME}: GET {ADDRESS}/health did not answer 200"),
         SYNCED))),
    ("nothing is pruned while the apply fails",
     replica(),
     seen(endpoint=None, applied=Applied(3, at(-1), "applying on east: UNAVAILABLE: down"),
          remote=(*REMOTE, obj("resource.k8s.io/v1", "ResourceClaimTemplate", "qwen-east-0-qwen-old"))), T0,
     Decision(status=status(
         cond("Ready", False, "WorkloadNotReady", f"{NAME}: applying on east: UNAVAILABLE: down"),
         cond("Synced", False, "ApplyFailed", f"{NAME}: applying on east: UNAVAILABLE: down")))),
    ("a cluster without a gateway address cannot be probed",
     replica(), seen(endpoint=None, cluster={"metadata": {"name": "east"}, "status": {}}), T0,
     Decision(status=status(
         cond("Ready", False, "Unreachable",
              f"{NAME}: GET east's gateway (no address yet) did not answer 200"),
         SYNCED))),
    ("a replica naming no InferenceCluster says so and touches nothing remote",
     replica(), seen(cluster=None, endpoint=None, remote=None, applied=None), T0,
     Decision(status=status(
         cond("Ready", False, "WorkloadNotReady", f"{NAME}: spec.clusterName 'east' names no InferenceCluster"),
         cond("Synced", False, "ClusterNotFound", f"{NAME}: spec.clusterName 'east' names no InferenceCluster")))),
    ("a replica whose ModelCache does not exist waits with CacheReady False and applies nothing",
     with_spec({"modelCacheRef": {"name": "qwen-weights"}}), seen(endpoint=None, applied=None), T0,
     Decision(status=status(
         cond("CacheReady", False, "CacheNotFound", f"{NAME} spec.modelCacheRef.name: ModelCache ml-team/qwen-weights not found"),
         cond("Ready", False, "WorkloadNotReady", f"{NAME} spec.modelCacheRef.name: ModelCache ml-team/qwen-weights not found"),
         cond("Synced", False, "CacheNotFound", f"{NAME} spec.modelCacheRef.name: ModelCache ml-team/qwen-weights not found")))),
    ("a replica whose ModelCache is hydrating on its cluster waits with the cache's progress there",
     with_spec({"modelCacheRef": {"name": "qwen-weights"}}),
     seen(endpoint=None, applied=None, cache=model_cache("Hydrating", "downloading")), T0,
     Decision(status=status(
         cond("CacheReady", False, "CacheNotReady", HYDRATING),
         cond("Ready", False, "WorkloadNotReady", HYDRATING),
         cond("Synced", False, "CacheNotReady", HYDRATING)))),
    ("once its ModelCache is Ready on its cluster the replica is applied with the cache mounted",
     with_spec({"modelCacheRef": {"name": "qwen-weights"}}),
     seen(endpoint=None, applied=None, cache=model_cache("Ready", "")), T0,
     Decision(apply=render(with_spec({"modelCacheRef": {"name": "qwen-weights"}})).objects)),
    ("a served replica of a Ready cache carries CacheReady True",
     with_spec({"modelCacheRef": {"name": "qwen-weights"}}),
     seen(cache=model_cache("Ready", ""), health=Health(True, at(-1))), T0,
     Decision(status=status(
         cond("CacheReady", True, "CacheStaged", f"{NAME}: ModelCache ml-team/qwen-weights is Ready on east (commit c0ffee)"),
         SERVING, SYNCED, address=ADDRESS))),
    ("an apply that reached the cluster is recorded on the replica (annotation applied-on)",
     replica(applied_on=None),
     seen(endpoint=None, remote=(), applied=Applied(3, at(-1), None, RETURNED)), T0,
     Decision(mark_applied=True, status=status(
         cond("Ready", False, "WorkloadNotReady", f"{NAME}: no Deployment {DEPLOYMENT_NAME} on east yet"),
         SYNCED))),
    ("a failed apply that may have reached the cluster is recorded too",
     replica(applied_on=None), seen(endpoint=None, remote=None, applied=Applied(3, at(-1), DOWN)), T0,
     Decision(mark_applied=True, status=status(
         cond("Ready", False, "WorkloadNotReady", f"{NAME}: {DOWN}"),
         cond("Synced", False, "ApplyFailed", f"{NAME}: {DOWN}")))),
    ("an apply refused before reaching the cluster (it has no kubeconfig) records nothing",
     replica(applied_on=None),
     seen(cluster=NEVER_PROVISIONED, endpoint=None, remote=None, applied=NO_KUBECONFIG), T0,
     Decision(status=status(
         cond("Ready", False, "WorkloadNotReady", f"{NAME}: {NO_KUBECONFIG.error}"),
         cond("Synced", False, "ApplyFailed", f"{NAME}: {NO_KUBECONFIG.error}")))),
    ("objects of it seen on the cluster are recorded (applied before the annotation existed)",
     replica(applied_on=None, status=SERVING_STATUS), seen(applied=None, health=HEALTHY), T0,
     Decision(mark_applied=True, apply=RENDERED)),
    ("an annotation naming another cluster is replaced with the replica's own",
     replica(applied_on="west", status=SERVING_STATUS), seen(), T0,
     Decision(mark_applied=True)),
]  # fmt: skip

NO_STATUS_CLUSTER: Json = {"metadata": {"name": "east"}}  # no cluster-provisioner ever wrote one
LOST_CLUSTER: Json = {
    "metadata": {"name": "east", "deletionTimestamp": stamp(-60)},
    "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ClusterUnreachable"}]},
}  # fmt: skip
UNREACHABLE_CLUSTER: Json = {
    "metadata": {"name": "east"},
    "status": {"gatewayAddress": "10.1.0.2",
               "conditions": [{"type": "Ready", "status": "False", "reason": "ClusterUnreachable",
                               "message": "no answer for 45s"}]},
}  # fmt: skip
RELEASED = "its cluster {}; released without tearing anything down"
NOTHING_APPLIED = "nothing of it was applied on east; released at once"
HELD = ("its objects on east cannot be torn down: InferenceCluster east {}; held until east "
        "answers (deleting InferenceCluster east releases it without a teardown)")  # fmt: skip
SYNCED_ONCE = replica(applied_on=None, deletionTimestamp=STAMP, status=SERVING_STATUS)


def blocked(message: str, when: float) -> Json:
    """The status of a replica held because its cluster cannot be reached."""
    ready = cond("Ready", False, "TeardownBlocked", f"{NAME}: {HELD.format(message)}")
    return status({**ready, "lastTransitionTime": stamp(when)})


DRAIN: list[tuple[str, Json, Observed, datetime.datetime, Decision]] = [
    ("deletion first withdraws the endpoint and touches nothing on the cluster",
     DELETING, seen(), T0,
     Decision(withdraw=True, soon=True,
              status=deleting("withdrawing its ModelEndpoint before the workload goes"))),
    ("then the front door gets 5 s to stop sending",
     DELETING, seen(endpoint=None), at(4.9),
     Decision(soon=True, status=deleting("endpoint withdrawn; draining for 5s", 4.9))),
    ("the drain counts from a withdrawal later than the deletion",
     DELETING, seen(endpoint=None, withdrawn_at=at(4)), at(8),
     Decision(soon=True, status=deleting("endpoint withdrawn; draining for 5s", 8))),
    ("after the drain everything of it on the cluster is deleted, the route first",
     DELETING, seen(endpoint=None), at(5),
     Decision(soon=True, teardown=(ROUTE_REF, SVC_REF, DEPLOYMENT_REF, CLAIM_REF),
              status=deleting("tearing down on east", 5))),
    ("objects already going are waited for, not deleted again",
     DELETING, seen(endpoint=None, remote=(workload(1, deletionTimestamp=stamp(5)),)), at(6),
     Decision(soon=True, status=deleting("tearing down on east", 6))),
    ("the finalizer is released once nothing of it is left on the cluster",
     DELETING, seen(endpoint=None, remote=()), at(6),
     Decision(release=True, status=deleting("tearing down on east", 6))),
    ("never released while the cluster's cache is not synced",
     DELETING, seen(endpoint=None, remote=None), at(6),
     Decision(soon=True, status=deleting("tearing down on east", 6))),
    ("a replica whose cluster is gone is released at once, its endpoint withdrawn",
     DELETING, seen(cluster=None, remote=None), T0,
     Decision(withdraw=True, release=True, status=deleting(RELEASED.format("is gone")))),
    ("a replica whose cluster is being deleted and cannot be reached is released at once",
     DELETING, seen(cluster=LOST_CLUSTER, endpoint=None, remote=None), T0,
     Decision(release=True,
              status=deleting(RELEASED.format("is being deleted and cannot be reached")))),
    ("an unreachable cluster that received its objects holds the replica, naming the cluster",
     DELETING, seen(cluster=UNREACHABLE_CLUSTER, endpoint=None, remote=None), at(600),
     Decision(status=blocked("is not Ready (ClusterUnreachable: no answer for 45s)", 600))),
    ("a cluster that reports no Ready condition at all holds it the same way",
     DELETING, seen(cluster=NO_STATUS_CLUSTER, endpoint=None, remote=None), at(6),
     Decision(soon=True, status=blocked("reports no Ready condition", 6))),
    ("a replica never applied on its cluster (never provisioned) is released at once",
     replica(applied_on=None, deletionTimestamp=STAMP),
     seen(cluster=NEVER_PROVISIONED, endpoint=None, remote=None, applied=NO_KUBECONFIG), T0,
     Decision(release=True, status=deleting(NOTHING_APPLIED))),
    ("after a restart (nothing in memory) a replica without the annotation is released at once",
     replica(applied_on=None, deletionTimestamp=STAMP),
     seen(cluster=UNREACHABLE_CLUSTER, endpoint=None, remote=None, applied=None, health=None), T0,
     Decision(release=True, status=deleting(NOTHING_APPLIED))),
    ("an annotation naming another cluster says nothing of this one",
     replica(applied_on="west", deletionTimestamp=STAMP),
     seen(cluster=NEVER_PROVISIONED, endpoint=None, remote=None, applied=None), T0,
     Decision(release=True, status=deleting(NOTHING_APPLIED))),
    ("a failed apply that may have reached the cluster holds it while the cluster is away",
     replica(applied_on=None, deletionTimestamp=STAMP),
     seen(cluster=UNREACHABLE_CLUSTER, endpoint=None, remote=None, applied=Applied(3, at(-1), DOWN)),
     at(6), Decision(soon=True, status=blocked("is not Ready (ClusterUnreachable: no answer for 45s)", 6))),
    ("a replica whose Synced once said Applied (before the annotation existed) is held too",
     SYNCED_ONCE, seen(cluster=UNREACHABLE_CLUSTER, endpoint=None, remote=None, applied=None), at(6),
     Decision(soon=True, status=status(
         *blocked("is not Ready (ClusterUnreachable: no answer for 45s)", 6)["conditions"], SYNCED))),
    ("objects seen on the cluster are torn down even without any record of an apply",
     replica(applied_on=None, deletionTimestamp=STAMP), seen(endpoint=None, applied=None), at(5),
     Decision(soon=True, teardown=(ROUTE_REF, SVC_REF, DEPLOYMENT_REF, CLAIM_REF),
              status=deleting("tearing down on east", 5))),
    ("a never-applied replica with an endpoint still withdraws it first",
     replica(applied_on=None, deletionTimestamp=STAMP), seen(remote=None, applied=None), T0,
     Decision(withdraw=True, soon=True,
              status=deleting("withdrawing its ModelEndpoint before the workload goes"))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("replica_", "observed", "now", "expected"),
    [case[1:] for case in LIVE + DRAIN],
    ids=[case[0] for case in LIVE + DRAIN],
)
def test_decide(
    replica_: Json, observed: Observed, now: datetime.datetime, expected: Decision
) -> None:
    assert decide(replica_, observed, now) == expected


def test_a_transition_time_is_kept_while_the_status_holds() -> None:
    old = status(
        cond("Ready", False, "Unreachable", "x") | {"lastTransitionTime": stamp(-99)}, SYNCED
    )
    decision = decide(replica(status=old), seen(health=Health(False, at(-0.5))), T0)
    assert decision.status is not None
    assert decision.status["conditions"][0]["lastTransitionTime"] == stamp(-99)


def test_probes_of_many_replicas_spread_over_7_5_to_12_5_seconds() -> None:
    intervals = {probe_interval(f"uid-{i}") for i in range(100)}
    assert all(7.5 <= s <= 12.5 for s in intervals)
    assert len(intervals) == 100, "every replica its own interval"
    assert min(intervals) < 8.5 and max(intervals) > 11.5, "spread over the whole range"
