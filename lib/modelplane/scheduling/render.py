"""Renders a placement as the ModelReplica objects the fleet-scheduler creates.

Output is deterministic (fixed key order, no timestamps, no random names), so
rendering the same placement twice gives byte-identical YAML, and a retained
replica re-renders exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.naming import CLUSTER_LABEL, DEPLOYMENT_LABEL, REPLICA_INDEX_LABEL, replica_name
from modelplane.scheduling.model import PlacedEngine, PlacedReplica
from modelplane.wellknown import API_VERSION


def _member(member: Mapping[str, Any], placed: PlacedEngine, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {"role": member.get("role", "Standalone")}
    if member.get("worker") is not None:
        out["worker"] = dict(member["worker"])
    out["nodePoolName"] = placed.pool
    resolved = placed.members[index].requests if index < len(placed.members) else ()
    if resolved:
        out["deviceRequests"] = [
            {
                "name": r.name,
                "count": r.count,
                "deviceClassName": r.device_class_name,
                "selectors": [{"cel": s} for s in r.selectors],
            }
            for r in resolved
        ]
    if member.get("template") is not None:
        out["template"] = member["template"]
    return out


def model_replica(deployment: Mapping[str, Any], replica: PlacedReplica) -> dict[str, Any]:
    """The ModelReplica for one placed replica of `deployment` (a validated API object)."""
    meta = deployment["metadata"]
    spec = deployment["spec"]
    name = meta["name"]
    engines_by_name = {e["name"]: e for e in spec.get("engines", ())}
    engines = []
    for placed in replica.engines:
        engine = engines_by_name.get(placed.engine, {"name": placed.engine})
        rendered: dict[str, Any] = {"name": placed.engine}
        if engine.get("phase") is not None:
            rendered["phase"] = engine["phase"]
        rendered["copies"] = int(engine.get("copies", 1))
        rendered["nodePoolName"] = placed.pool
        rendered["nodeCost"] = placed.node_cost
        rendered["members"] = [
            _member(member, placed, i) for i, member in enumerate(engine.get("members", ()))
        ]
        engines.append(rendered)
    labels = {
        DEPLOYMENT_LABEL: name,
        CLUSTER_LABEL: replica.cluster,
        REPLICA_INDEX_LABEL: str(replica.index),
    }
    body: dict[str, Any] = {
        "clusterName": replica.cluster,
        "deploymentName": name,
        "index": replica.index,
    }
    if spec.get("modelCacheRef") is not None:
        body["modelCacheRef"] = dict(spec["modelCacheRef"])
    if spec.get("serving") is not None:
        body["serving"] = dict(spec["serving"])
    body["engines"] = engines
    metadata: dict[str, Any] = {
        "name": replica.name or replica_name(name, replica.cluster, replica.index),
        "namespace": meta.get("namespace", "default"),
        "labels": labels,
    }
    if meta.get("uid"):
        metadata["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": "ModelDeployment",
                "name": name,
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {"apiVersion": API_VERSION, "kind": "ModelReplica", "metadata": metadata, "spec": body}
