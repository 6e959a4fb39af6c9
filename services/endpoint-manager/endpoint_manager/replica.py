"""What one ModelReplica looks like to endpoint-manager: names, addresses, readiness, its
ModelEndpoint. Pure (no I/O, no clock): `endpoint_manager.decide` builds on it.

- `route_path`, `gateway_url`: where the replica answers on its cluster's gateway;
- `workload_problem`: why a Deployment or LeaderWorkerSet is not (fully) ready yet;
- `endpoint_for`, `same_endpoint`: the ModelEndpoint of a serving replica and whether an
  existing one already says the same; `endpoint_labels`: the labels such an endpoint carries;
- `cluster_lost`: an InferenceCluster being deleted that cluster-provisioner cannot reach
  (nothing can be torn down there); `cluster_not_ready`: why a cluster is not Ready;
- `APPLIED_ON`, `applied_on`: the annotation recording that objects of the replica may be
  on its cluster (it outlives this process, so a restart still knows a teardown is owed);
- the finalizer, the condition reasons and the drain time.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from modelplane import conditions, naming
from modelplane.wellknown import API_VERSION, CLUSTER_UNREACHABLE, MANAGED_BY, Json

from endpoint_manager.workload import MANAGER

FINALIZER = "modelplane.ai/endpoint-manager"
APPLIED_ON = "modelplane.ai/applied-on"
"""Annotation endpoint-manager puts on a ModelReplica once an apply may have reached its
cluster; its value is that cluster's name."""
DRAIN_S = 5.0
"""How long a withdrawn endpoint drains before the workload behind it goes."""

# Reasons
APPLIED = "Applied"
APPLY_FAILED = "ApplyFailed"
UNSUPPORTED = "Unsupported"
CLUSTER_NOT_FOUND = "ClusterNotFound"
SERVING = "Serving"
WORKLOAD_NOT_READY = "WorkloadNotReady"
UNREACHABLE = "Unreachable"
DELETING = "Deleting"
TEARDOWN_BLOCKED = "TeardownBlocked"


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


def workload_problem(workload: Mapping[str, Any], one_ready: bool = False) -> str | None:
    """Why a Deployment or LeaderWorkerSet is not fully ready yet (None when it is); with
    `one_ready`, why none of its pods (gangs) is ready (None once one is)."""
    meta, spec = workload["metadata"], workload.get("spec") or {}
    status = workload.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    what = f"{workload.get('kind', 'Workload')} {meta.get('namespace', '')}/{meta['name']}"
    if one_ready:
        return None if ready >= 1 or wanted < 1 else f"{what}: none of {wanted} ready"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return f"{what}: the latest change is not rolled out yet"
    if ready < wanted:
        return f"{what}: {ready} of {wanted} ready"
    if int(status.get("updatedReplicas", wanted) or 0) < wanted:
        return f"{what}: {status.get('updatedReplicas') or 0} of {wanted} updated"
    return None


def endpoint_labels(
    deployment: Mapping[str, Any] | None, deployment_name: str, cluster: str
) -> dict[str, str]:
    """The labels of an endpoint of `deployment` on `cluster`: the deployment's own labels
    plus the platform's (what ModelService selectors match)."""
    labels = dict(((deployment or {}).get("metadata") or {}).get("labels") or {})
    labels.update(
        {
            naming.DEPLOYMENT_LABEL: deployment_name,
            naming.CLUSTER_LABEL: cluster,
            MANAGED_BY: MANAGER,
        }
    )
    return labels


def endpoint_for(
    replica: Mapping[str, Any], deployment: Mapping[str, Any] | None, url: str
) -> Json:
    """The ModelEndpoint of a Ready replica: the deployment's own labels plus the
    platform's, owned by the replica, routing the service prefix to the replica's path."""
    meta, spec = replica["metadata"], replica["spec"]
    labels = endpoint_labels(deployment, str(spec.get("deploymentName") or ""), spec["clusterName"])
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


def same_endpoint(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether `existing` already routes as `wanted` does and carries all its labels."""
    labels = existing["metadata"].get("labels") or {}
    return existing.get("spec") == wanted["spec"] and all(
        labels.get(k) == v for k, v in wanted["metadata"]["labels"].items()
    )


def _ready_condition(cluster: Mapping[str, Any]) -> Mapping[str, Any] | None:
    found = [
        c for c in (cluster.get("status") or {}).get("conditions") or []
        if c.get("type") == conditions.READY
    ]  # fmt: skip
    return found[0] if found else None


def cluster_lost(cluster: Mapping[str, Any]) -> bool:
    """An InferenceCluster being deleted whose Ready condition says cluster-provisioner
    cannot reach it: it releases its own finalizer at once, and nothing can be torn down."""
    if not cluster["metadata"].get("deletionTimestamp"):
        return False
    ready = _ready_condition(cluster)
    return ready is not None and ready.get("reason") == CLUSTER_UNREACHABLE


def cluster_not_ready(cluster: Mapping[str, Any]) -> str | None:
    """Why the InferenceCluster is not Ready, as its Ready condition says (None when it is)."""
    name = f"InferenceCluster {cluster['metadata']['name']}"
    ready = _ready_condition(cluster)
    if ready is None:
        return f"{name} reports no Ready condition"
    if ready.get("status") == "True":
        return None
    said = ": ".join(str(p) for p in (ready.get("reason"), ready.get("message")) if p)
    return f"{name} is not Ready ({said or 'no reason given'})"


def applied_on(replica: Mapping[str, Any]) -> bool:
    """Whether the replica records that objects of it may be on its cluster: `APPLIED_ON`
    names it, or (a replica applied before that annotation existed) its `Synced` condition
    once said `Applied`."""
    annotations = replica["metadata"].get("annotations") or {}
    if annotations.get(APPLIED_ON) == replica["spec"]["clusterName"]:
        return True
    return any(
        c.get("type") == conditions.SYNCED and c.get("reason") == APPLIED
        for c in (replica.get("status") or {}).get("conditions") or []
    )


def stamp(now: datetime.datetime) -> str:
    """`now` as an RFC 3339 timestamp in UTC, to the second."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 timestamp as the API writes it (`...Z`)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
