"""The scheduler extension on the local fleet: GPU claims pack, whole nodes stay whole.

A cluster `pack` joins the session's fleet with one pool of two nodes, eight GPUs
each. Its second kube-scheduler (the real binary, `schedulerName: modelplane`)
asks Modelplane's extender, which reads the cluster's ResourceSlices and claims
through watches. Four pods claiming two GPUs each, created at once, all bind to
one node (the default scheduler would spread them); a pod claiming eight GPUs
then finds the other node whole. With the extender down the second scheduler
binds nothing (`ignorable: false`), and binds the waiting pod once it is back.
Killed (SIGKILL) and restarted while pods keep arriving, it lets nothing bind
wrongly and everything bind once back. A node's ResourceSlice rewritten through
the API server (devices removed, then added) changes its `filter` answers.
The pods run an image the fleet does not simulate: these tests are about binding.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from modelplane_localfleet import extension, fleetfile, process
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e import dra
from e2e.kube import Json, apply, get, items, wait_for

NAMESPACE = "packing"
TEMPLATES = {"two": 2, "eight": 8, "twelve": 12}  # claim templates by GPUs claimed
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
        apply(cluster, *(dra.claim_template(n, NAMESPACE, c) for n, c in TEMPLATES.items()))
        yield cluster
    finally:
        local_fleet.remove("pack")


def gpu_pod(name: str, template: str) -> Json:
    return dra.gpu_pod(name, NAMESPACE, template, extension.SCHEDULER_NAME)


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
    allocated = dra.allocated(pack, NAMESPACE)
    assert len(allocated) == 16 and len({(a.pool, a.device) for a in allocated}) == 16


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


def emptied(cluster: Cluster) -> None:
    """No pod left in the namespace and every claim gone (their devices free again)."""
    cluster.kubectl("delete", "pods", "--all", "-n", NAMESPACE, "--wait=true", "--timeout=90s")
    wait_for("every claim released",
             lambda: not items(cluster, "resourceclaims", "-n", NAMESPACE), 90)  # fmt: skip


def extender_running(local_fleet: Fleet, cluster: Cluster) -> None:
    if process.running(cluster.record_path(extension.EXTENDER_COMPONENT)) is None:
        local_fleet.start(cluster.name)


def bound_right(cluster: Cluster) -> list[dra.Allocated]:
    """The namespace's allocations, checked: every device allocated once, on the node its
    pod is bound to, and no node holding more than its slices publish."""
    found = dra.allocated(cluster, NAMESPACE)
    devices = dra.devices_per_node(cluster)
    assert len({(a.pool, a.device) for a in found}) == len(found), f"a device twice: {found}"
    wrong = [a for a in found if a.node is not None and a.node != a.pool]
    assert not wrong, f"pods bound away from their devices: {wrong}"
    for node in {a.pool for a in found}:
        taken = sum(1 for a in found if a.pool == node)
        assert taken <= devices.get(node, 0), f"{node}: {taken} of {devices.get(node)} devices"
    return found


class Creator(threading.Thread):
    """Creates the pods one at a time, `every_s` apart, noting what had happened first."""

    def __init__(self, cluster: Cluster, pods: list[Json], every_s: float) -> None:
        super().__init__(daemon=True)
        self.cluster, self.pods, self.every_s = cluster, pods, every_s
        self.created: list[tuple[str, str]] = []  # (pod, the phase it was created in)
        self.phase = "before"
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for pod in self.pods:
                phase = self.phase
                apply(self.cluster, pod)
                self.created.append((pod["metadata"]["name"], phase))
                time.sleep(self.every_s)
        except BaseException as error:  # reported by the test thread
            self.error = error


def test_the_extender_killed_and_restarted_while_pods_arrive_binds_nothing_wrongly(
    pack: Cluster, local_fleet: Fleet
) -> None:
    """Four 2-GPU pods and one 8-GPU pod arrive one a second; the extender is killed
    (SIGKILL) after the first two, and started again once two more arrived. Nothing
    created while it is down binds; afterwards all five do, which takes the small ones
    packed on one node; no device is allocated twice or on another node than its pod's."""
    extender_running(local_fleet, pack)
    emptied(pack)
    wanted = [gpu_pod(f"load-{i}", "two") for i in range(2)]
    wanted += [gpu_pod("load-2", "two"), gpu_pod("load-whole", "eight"), gpu_pod("load-3", "two")]
    creator = Creator(pack, wanted, every_s=1.0)
    creator.start()
    wait_for("two pods created", lambda: len(creator.created) >= 2 or creator.error, 60)
    process.stop(pack.record_path(extension.EXTENDER_COMPONENT), grace_s=0, abrupt=True)
    creator.phase = "outage"
    wait_for("two more created while it is down",
             lambda: len(creator.created) >= 4 or creator.error, 60)  # fmt: skip
    during = [name for name, phase in creator.created if phase == "outage"]
    assert during and all(node_of(pack, name) is None for name in during), during
    bound_right(pack)
    creator.phase = "restart"
    local_fleet.start("pack")
    creator.join(60)
    assert creator.error is None, creator.error
    names = [pod["metadata"]["name"] for pod in wanted]
    placed = wait_for("all five bound", lambda: bound(pack, *names), 180)
    small = {placed[name] for name in names if name != "load-whole"}
    assert len(small) == 1 and placed["load-whole"] not in small, placed
    assert len(bound_right(pack)) == 16


def filter_answer(cluster: Cluster, template: str, nodes: list[str]) -> Json:
    """The extender's own `filter` answer for a pod claiming `template`, asked over HTTP
    as kube-scheduler asks it."""
    pod = {
        "metadata": {"name": "asking", "namespace": NAMESPACE, "uid": "asking"},
        "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": template}]},
    }
    body = json.dumps({"Pod": pod, "NodeNames": nodes}).encode()
    request = urllib.request.Request(f"{extension.extender_url(cluster.plan.address)}/filter",
                                     body, {"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer: Json = json.load(reply)
    return answer


def passing(cluster: Cluster, template: str, nodes: list[str]) -> list[str]:
    answer = filter_answer(cluster, template, nodes)
    assert not answer.get("Error"), answer
    return sorted(answer["NodeNames"])


def republish(cluster: Cluster, node: str, count: int) -> None:
    """Replace the node's GPU slice with one of `count` devices (a newer pool generation),
    as a DRA driver does when devices go away or come back."""
    (found,) = [s for s in items(cluster, "resourceslices")
                if s["spec"]["nodeName"] == node and s["spec"]["driver"] == dra.GPU]  # fmt: skip
    spec = found["spec"]
    model = spec["devices"][0]
    spec["devices"] = [{**model, "name": f"gpu-{i}"} for i in range(count)]
    spec["pool"]["generation"] = int(spec["pool"].get("generation", 1)) + 1
    cluster.kubectl("replace", "-f", "-", stdin=json.dumps(found))


def test_a_node_whose_slice_loses_and_gains_devices_changes_the_extenders_answers(
    pack: Cluster, local_fleet: Fleet
) -> None:
    """One node's ResourceSlice is rewritten through the API server: four of its eight
    GPUs go, then twelve are published. The extender's watch sees each change: its
    filter refuses that node an 8-GPU pod, then offers only it a 12-GPU pod, and the
    second scheduler binds real pods accordingly."""
    extender_running(local_fleet, pack)
    emptied(pack)
    devices = dra.devices_per_node(pack)
    nodes = sorted(devices)
    assert [devices[n] for n in nodes] == [8, 8], devices
    changing, other = nodes
    assert passing(pack, "eight", nodes) == nodes
    assert passing(pack, "twelve", nodes) == []
    try:
        republish(pack, changing, 4)
        wait_for("the extender to see four GPUs go",
                 lambda: passing(pack, "eight", nodes) == [other], 30)  # fmt: skip
        refused = filter_answer(pack, "eight", nodes)["FailedNodes"]
        assert set(refused) == {changing}, refused
        assert passing(pack, "two", nodes) == nodes
        apply(pack, gpu_pod("after-removal", "eight"))
        placed = wait_for("the 8-GPU pod bound", lambda: bound(pack, "after-removal"), 120)
        assert placed == {"after-removal": other}

        republish(pack, changing, 12)
        wait_for("the extender to see twelve GPUs",
                 lambda: passing(pack, "twelve", nodes) == [changing], 30)  # fmt: skip
        apply(pack, gpu_pod("after-addition", "twelve"))
        placed = wait_for("the 12-GPU pod bound", lambda: bound(pack, "after-addition"), 120)
        assert placed == {"after-addition": changing}
        assert len(bound_right(pack)) == 20
    finally:
        emptied(pack)
        republish(pack, changing, 8)
    wait_for("eight GPUs again", lambda: passing(pack, "eight", nodes) == nodes, 30)
