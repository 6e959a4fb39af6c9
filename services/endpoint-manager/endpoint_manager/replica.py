"""What endpoint-manager wants for one ModelReplica, decided from what it observed. Pure.

A live replica carries the finalizer `FINALIZER`. Its `Synced` condition says
whether its objects are applied on its cluster; `Ready` says whether every
workload has all its pods ready and `GET /health` through the cluster's gateway
path answered 200. Its ModelEndpoint exists only while it is Ready.

A replica being deleted is drained in order: its ModelEndpoint is withdrawn
first; the workload on the cluster is torn down once the endpoint is gone and
`DRAIN_S` have passed since it was withdrawn (since the deletion began when
this process did not see the withdrawal), so the front door stops sending
before the pods go; the finalizer is released when nothing of it is
left on the cluster, or at once when its InferenceCluster no longer exists.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelplane import conditions, naming

from endpoint_manager.workload import MANAGED_BY, MANAGER

Json = dict[str, Any]
FINALIZER = "modelplane.ai/endpoint-manager"
API_VERSION = "modelplane.ai/v1alpha1"
DRAIN_S = 5.0
SOON_WINDOW_S = 120.0

# Reasons
APPLIED = "Applied"
APPLY_FAILED = "ApplyFailed"
UNSUPPORTED = "Unsupported"
CLUSTER_NOT_FOUND = "ClusterNotFound"
SERVING = "Serving"
WORKLOAD_NOT_READY = "WorkloadNotReady"
UNREACHABLE = "Unreachable"
DELETING = "Deleting"


@dataclass(frozen=True, slots=True)
class Observed:
    """What the controller read or did for one replica this pass.

    cluster: its InferenceCluster (None when there is none);
    deployment: its ModelDeployment (None when gone);
    endpoint: its ModelEndpoint as it exists now (None when absent);
    workloads: its Deployments/LeaderWorkerSets on the cluster (None when unread);
    sync_error: why rendering or applying failed (None when applied);
    unsupported: True when `sync_error` is a spec the platform cannot run;
    healthy: whether `GET /health` through the gateway answered 200 (None: not probed);
    withdrawn_at: when this process withdrew the endpoint of the replica being deleted
    (None: it did not, e.g. it restarted since).
    """

    cluster: Json | None
    deployment: Json | None = None
    endpoint: Json | None = None
    workloads: tuple[Json, ...] | None = None
    sync_error: str | None = None
    unsupported: bool = False
    healthy: bool | None = None
    withdrawn_at: datetime.datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """status: the replica's new status; endpoint: the ModelEndpoint wanted (None: none);
    teardown: delete the replica's objects on its cluster now; release: drop the finalizer."""

    status: Json
    endpoint: Json | None
    teardown: bool = False
    release: bool = False


def key(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def route_path(replica: Mapping[str, Any]) -> str:
    """The replica's path prefix on its cluster's gateway."""
    meta = replica["metadata"]
    return f"/{meta['namespace']}/{meta['name']}/"


def gateway_url(cluster: Mapping[str, Any] | None) -> str | None:
    """`http://<address>` of the cluster's gateway as cluster-provisioner published it."""
    address = ((cluster or {}).get("status") or {}).get("gatewayAddress")
    if not address:
        return None
    return str(address).rstrip("/") if "://" in address else f"http://{address}"


def workload_problem(workload: Mapping[str, Any]) -> str | None:
    """Why a Deployment or LeaderWorkerSet is not fully ready yet (None when it is)."""
    meta, spec = workload["metadata"], workload.get("spec") or {}
    status = workload.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    what = f"{workload.get('kind', 'Workload')} {meta.get('namespace', '')}/{meta['name']}"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return f"{what}: the latest change is not rolled out yet"
    if ready < wanted:
        return f"{what}: {ready} of {wanted} ready"
    if int(status.get("updatedReplicas", wanted) or 0) < wanted:
        return f"{what}: {status.get('updatedReplicas') or 0} of {wanted} updated"
    return None


def endpoint_for(
    replica: Mapping[str, Any], deployment: Mapping[str, Any] | None, url: str
) -> Json:
    """The ModelEndpoint of a Ready replica: the deployment's own labels plus the
    platform's, owned by the replica, routing the service prefix to the replica's path."""
    meta, spec = replica["metadata"], replica["spec"]
    labels = dict(((deployment or {}).get("metadata") or {}).get("labels") or {})
    labels.update(
        {
            naming.DEPLOYMENT_LABEL: str(spec.get("deploymentName") or ""),
            naming.CLUSTER_LABEL: spec["clusterName"],
            MANAGED_BY: MANAGER,
        }
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelEndpoint",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ModelReplica",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"url": url, "rewritePath": route_path(replica)},
    }


def _stamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def expects_change(replica: Mapping[str, Any], decision: Decision, now: datetime.datetime) -> bool:
    """Whether this replica should change within seconds without any control-cluster event:
    a new one not serving yet (its pods turn Ready on its cluster, which no watch here sees)
    or one draining, within `SOON_WINDOW_S` of its creation or deletion (a replica broken
    for longer waits for the ordinary resync)."""
    meta = replica["metadata"]
    deleting = meta.get("deletionTimestamp")
    if deleting:
        since, waiting = deleting, not decision.release
    else:
        since, waiting = meta.get("creationTimestamp"), decision.endpoint is None
    return bool(since) and waiting and (now - _parse(since)).total_seconds() < SOON_WINDOW_S


def decide(replica: Mapping[str, Any], seen: Observed, now: datetime.datetime) -> Decision:
    meta = replica["metadata"]
    generation = int(meta.get("generation") or 0)
    name = f"ModelReplica {key(replica)}"
    cluster_name = replica["spec"]["clusterName"]
    url = gateway_url(seen.cluster)
    stamp = _stamp(now)

    def cond(type_: str, ok: bool, reason: str, message: str) -> dict[str, object]:
        state: conditions.Status = "True" if ok else "False"
        return conditions.condition(type_, state, reason, message, generation, stamp)

    deleting = meta.get("deletionTimestamp")
    if deleting:
        return _drain(replica, seen, now, deleting, cond)

    if seen.cluster is None:
        synced = cond(
            conditions.SYNCED,
            False,
            CLUSTER_NOT_FOUND,
            f"{name}: spec.clusterName {cluster_name!r} names no InferenceCluster",
        )
    elif seen.sync_error is not None:
        synced = cond(
            conditions.SYNCED,
            False,
            UNSUPPORTED if seen.unsupported else APPLY_FAILED,
            f"{name}: {seen.sync_error}",
        )
    else:
        synced = cond(conditions.SYNCED, True, APPLIED, f"{name}: applied on {cluster_name}")

    problems = [p for p in map(workload_problem, seen.workloads or ()) if p]
    address = f"{url}{route_path(replica).rstrip('/')}" if url else None
    if synced["status"] != "True":
        ready = cond(conditions.READY, False, WORKLOAD_NOT_READY, str(synced["message"]))
    elif seen.workloads is None or not seen.workloads or problems:
        why = "; ".join(problems) or f"{name}: no workload found on {cluster_name} yet"
        ready = cond(conditions.READY, False, WORKLOAD_NOT_READY, why)
    elif not seen.healthy or address is None:
        where = f"{address}/health" if address else f"{cluster_name}'s gateway (no address yet)"
        ready = cond(
            conditions.READY, False, UNREACHABLE, f"{name}: GET {where} did not answer 200"
        )
    else:
        ready = cond(conditions.READY, True, SERVING, f"{name}: serving at {address}")

    status = _status(replica, [synced, ready], generation)
    serving = ready["status"] == "True" and url is not None
    if serving:
        status["address"] = address
    endpoint = endpoint_for(replica, seen.deployment, url) if serving and url else None
    return Decision(status=status, endpoint=endpoint)


def _drain(
    replica: Mapping[str, Any], seen: Observed, now: datetime.datetime, deleting: str, cond: Any
) -> Decision:
    generation = int(replica["metadata"].get("generation") or 0)
    name = f"ModelReplica {key(replica)}"
    if seen.cluster is None:
        message = f"{name}: its cluster is gone; released without tearing anything down"
        status = _status(replica, [cond(conditions.READY, False, DELETING, message)], generation)
        return Decision(status=status, endpoint=None, release=True)
    since = max(_parse(deleting), seen.withdrawn_at or _parse(deleting))
    drained = seen.endpoint is None and (now - since).total_seconds() >= DRAIN_S
    if seen.endpoint is not None:
        message = f"{name}: withdrawing its ModelEndpoint before the workload goes"
    elif not drained:
        message = f"{name}: endpoint withdrawn; draining for {DRAIN_S:g}s"
    else:
        message = f"{name}: tearing down on {replica['spec']['clusterName']}"
    status = _status(replica, [cond(conditions.READY, False, DELETING, message)], generation)
    gone = seen.workloads is not None and not seen.workloads
    return Decision(status=status, endpoint=None, teardown=drained, release=drained and gone)


def _status(replica: Mapping[str, Any], wanted: list[dict[str, object]], generation: int) -> Json:
    previous = (replica.get("status") or {}).get("conditions") or []
    return {"conditions": conditions.merge(previous, wanted), "observedGeneration": generation}
