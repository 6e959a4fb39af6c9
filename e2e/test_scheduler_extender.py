"""The scheduler extension on the local fleet: GPU claims pack, whole nodes stay whole.

A cluster `pack` joins the session's fleet with one pool of two nodes, eight GPUs
each. Its second kube-scheduler (the real binary, `schedulerName: modelplane`)
asks Modelplane's extender, which reads the cluster's ResourceSlices and claims
through watches. Four pods claiming two GPUs each, created at once, all bind to
one node (the default scheduler would spread them); a pod claiming eight GPUs
then finds the other node whole. With the extender down the second scheduler
binds nothing (`ignorable: false`), and binds the waiting pod once it is back.
The pods run an image the fleet does not simulate: these tests are about binding.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from modelplane_localfleet import extension, fleetfile, process
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.kube import Json, apply, get, items, wait_for

NAMESPACE = "packing"
FLEET = """
apiVersion: modelplane.ai/v1alpha1
kind: InferenceClass
metadata: {name: h100-8x}
spec:
  devices:
  - name: gpu
    driver: gpu.nvidia.com
    deviceClassName: gpu.nvidia.com
    count: 8
    attributes:
      architecture: {string: Hopper}
---
apiVersion: modelplane.ai/v1alpha1
kind: InferenceCluster
metadata: {name: pack}
spec:
  cluster:
    source: Existing
    existing:
      secretRef: {name: pack-kubeconfig, key: kubeconfig}
  nodePools:
  - {name: big, className: h100-8x, nodeCount: 2}
"""


@pytest.fixture(scope="module")
def pack(local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    path = tmp_path_factory.mktemp("pack") / "fleet.yaml"
    path.write_text(FLEET)
    (entry,) = fleetfile.read([path])
    local_fleet.add(entry)
    cluster = local_fleet.cluster("pack")
    try:
        cluster.kubectl("create", "namespace", NAMESPACE)
        apply(cluster, claim_template("two", 2), claim_template("eight", 8))
        yield cluster
    finally:
        local_fleet.remove("pack")


def claim_template(name: str, count: int) -> Json:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"spec": {"devices": {"requests": [
            {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": count}}
        ]}}},
    }  # fmt: skip


def gpu_pod(name: str, template: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "schedulerName": extension.SCHEDULER_NAME,
            "tolerations": [{"operator": "Exists"}],
            "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": template}],
            "containers": [
                {"name": "engine", "image": "example.invalid/engine:1",
                 "resources": {"claims": [{"name": "gpu"}]}}
            ],
        },
    }  # fmt: skip


def node_of(cluster: Cluster, name: str) -> str | None:
    found = get(cluster, "pod", name, "-n", NAMESPACE)
    return (found.get("spec") or {}).get("nodeName")


def bound(cluster: Cluster, *names: str) -> dict[str, str] | None:
    nodes = {name: node_of(cluster, name) for name in names}
    return {n: str(node) for n, node in nodes.items()} if all(nodes.values()) else None


def test_small_claims_share_one_node_and_a_whole_node_claim_finds_the_other(
    pack: Cluster,
) -> None:
    small = [f"small-{i}" for i in range(4)]
    apply(pack, *(gpu_pod(name, "two") for name in small))
    placed = wait_for("the four 2-GPU pods bound", lambda: bound(pack, *small), 120)
    assert len(set(placed.values())) == 1, f"the 2-GPU pods spread: {placed}"
    apply(pack, gpu_pod("whole", "eight"))
    whole = wait_for("the 8-GPU pod bound", lambda: bound(pack, "whole"), 120)
    assert whole["whole"] != next(iter(placed.values()))
    claims = items(pack, "resourceclaims", "-n", NAMESPACE)
    allocated = [
        r
        for c in claims
        for r in ((c.get("status") or {}).get("allocation") or {})["devices"]["results"]
    ]
    assert len(allocated) == 16 and len({(r["pool"], r["device"]) for r in allocated}) == 16


def test_without_the_extender_nothing_binds_and_the_waiting_pod_binds_once_it_is_back(
    pack: Cluster, local_fleet: Fleet
) -> None:
    pack.kubectl("delete", "pod", "-n", NAMESPACE, "small-0", "--wait=true", "--timeout=60s")

    def released() -> bool:
        owners = {
            ref.get("name")
            for claim in items(pack, "resourceclaims", "-n", NAMESPACE)
            for ref in claim["metadata"].get("ownerReferences") or ()
        }
        return "small-0" not in owners

    wait_for("small-0's claim released", released, 60)
    process.stop(pack.record_path(extension.EXTENDER_COMPONENT), grace_s=2)
    apply(pack, gpu_pod("late", "two"))

    def refused() -> Json | None:
        events = items(pack, "events", "-n", NAMESPACE, "--field-selector",
                       "involvedObject.name=late,reason=FailedScheduling")  # fmt: skip
        return events[-1] if events else None

    event = wait_for("the second scheduler to report the extender unreachable", refused, 60)
    assert "extender" in event["message"].lower() or "10262" in event["message"], event
    assert node_of(pack, "late") is None
    local_fleet.start("pack")
    placed = wait_for("the waiting pod bound", lambda: bound(pack, "late"), 120)
    assert placed["late"] == node_of(pack, "small-1"), "it filled the freed GPUs"
