"""`plan(objects)`, the one entry point: the same objects decide the same way offline and live.

Each case is a list of manifests and the placement expected, written out by hand as
`{deployment: [(index, cluster), ...]}` plus the reasons of the unplaced ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from modelplane.scheduling.offline import plan

API = "modelplane.ai/v1alpha1"
L4 = {"apiVersion": API, "kind": "InferenceClass", "metadata": {"name": "l4"},
      "spec": {"devices": [{"name": "gpu", "driver": "gpu.nvidia.com",
                            "deviceClassName": "gpu.nvidia.com", "count": 1}]}}  # fmt: skip
READY = {"gatewayAddress": "10.0.0.1",
         "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                         "lastTransitionTime": "2026-01-01T00:00:00Z"}]}  # fmt: skip


def cluster(name: str, nodes: int = 1, status: dict[str, Any] | None = None, **meta: Any) -> Any:
    obj: dict[str, Any] = {
        "apiVersion": API,
        "kind": "InferenceCluster",
        "metadata": {"name": name, **meta},
        "spec": {
            "cluster": {"source": "Existing", "existing": {"secretRef": {"name": "k"}}},
            "nodePools": [{"name": "p", "className": "l4", "nodeCount": nodes}],
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


def md(name: str, replicas: int = 1, **meta: Any) -> Any:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ns", **meta},
        "spec": {
            "replicas": replicas,
            "engines": [{"name": "e", "members": [{
                "role": "Standalone", "nodeSelector": {"devices": [{"name": "gpu"}]},
                "template": {}}]}],
        },
    }  # fmt: skip


def mr(name: str, cluster_name: str, labels: dict[str, str]) -> Any:
    return {
        "apiVersion": API,
        "kind": "ModelReplica",
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "spec": {"clusterName": cluster_name, "engines": [{"name": "e", "nodePoolName": "p",
                 "nodeCost": 1, "members": [{"role": "Standalone", "nodePoolName": "p"}]}]},
    }  # fmt: skip


@dataclass
class Case:
    name: str
    objects: list[Any]
    placed: dict[str, list[tuple[int, str]]]
    reasons: dict[str, list[str]] = field(default_factory=dict)
    offline: bool = True


CASES = [
    Case(
        "offline, a cluster without any status counts as Ready",
        [L4, cluster("c"), md("a")],
        {"a": [(0, "c")]},
    ),
    Case(
        "a Ready cluster without a gateway address is degraded and takes no new replica, "
        "offline as live",
        [L4, cluster("c", status={**READY, "gatewayAddress": ""}), md("a")],
        {"a": []},
        {"a": ["c: not Ready (no gateway address yet)"]},
    ),
    Case(
        "live, a cluster without status yet is not Ready",
        [L4, cluster("c"), md("a")],
        {"a": []},
        {"a": ["c: not Ready (no Ready condition yet)"]},
        offline=False,
    ),
    Case(
        "a Ready cluster with a gateway address takes replicas, offline as live",
        [L4, cluster("c", status=READY), md("a")],
        {"a": [(0, "c")]},
        offline=False,
    ),
    Case(
        "a cluster being deleted counts as absent",
        [L4, cluster("c", deletionTimestamp="2026-01-01T00:00:00Z"), cluster("d"), md("a")],
        {"a": [(0, "d")]},
    ),
    Case(
        "a ModelReplica without spec.index takes its replica-index label's index",
        [
            L4,
            cluster("c", 2),
            mr("a-c-7", "c", {"modelplane.ai/deployment": "a", "modelplane.ai/replica-index": "1"}),
            md("a"),
        ],
        {"a": [(1, "c")]},
    ),
    Case(
        "the oldest deployment is placed first; ones without a creation time follow in input order",
        [
            L4,
            cluster("c", 2),
            md("x"),
            md("y", creationTimestamp="2026-02-01T00:00:00Z"),
            md("z", creationTimestamp="2026-01-01T00:00:00Z"),
        ],
        {"z": [(0, "c")], "y": [(0, "c")], "x": []},
        {"x": ["c: pool p has 0 of 1 needed nodes free"]},
    ),
    Case(
        "a deployment being deleted is not placed but its replicas keep their nodes",
        [
            L4,
            cluster("c", 1),
            mr("gone-c-0", "c", {"modelplane.ai/deployment": "gone"}),
            md("gone", deletionTimestamp="2026-01-01T00:00:00Z"),
            md("a"),
        ],
        {"a": []},
        {"a": ["c: pool p has 0 of 1 needed nodes free"]},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan(case: Case) -> None:
    result = plan(case.objects, offline=case.offline)
    assert result.problems == ()
    placed = {d.name: [(r.index, r.cluster) for r in d.replicas] for d in result.deployments}
    assert placed == case.placed
    assert list(placed) == list(case.placed), "placed in the expected order"
    reasons = {d.name: list(d.reasons) for d in result.deployments if d.reasons}
    assert reasons == case.reasons
