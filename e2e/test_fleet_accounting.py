"""Fleet accounting through the control plane: devices with the scheduler extension, whole
nodes without it.

A cluster `acct` joins the session's fleet with one pool of two nodes, eight GPUs each;
the harness runs the second kube-scheduler and the extender on it. cluster-provisioner,
fleet-scheduler and endpoint-manager run as their own processes. With the extension
Healthy (`status.schedulerExtension`, from the extender's Lease), four replicas of a
two-GPU engine and then one of an eight-GPU engine, applied as ModelDeployments, are all
placed on `acct` (the whole-node rule would place two), every pod names the `modelplane`
scheduler and binds, the four small ones on one node. Once the extender stops, the
cluster is counted in whole nodes: what is placed stays, and a new deployment gets no
replica there.

Without the extension (extender stopped: Node accounting, pods for acct's default
kube-scheduler), the same workload made as plain pods leaves the 8-GPU pod Pending (the
default scheduler spreads the 2-GPU pods over both nodes), and applied through the
fleet it is never placed: two 2-GPU replicas take the two whole nodes, the rest is
refused, and no pod the fleet made waits.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from modelplane.naming import DEPLOYMENT_LABEL, POOL_LABEL
from modelplane_localfleet import extension, fleetfile, process
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.dra import allocated, claim_template, gpu_pod
from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import Service, cluster_provisioner, endpoint_manager, fleet_scheduler, serving

pytestmark = pytest.mark.usefixtures("local_fleet")
FLEET_API_PORT = 50251
PLAIN = "plain-pods"  # acct's namespace for pods made without the fleet
HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
FLEET = """
apiVersion: modelplane.ai/v1alpha1
kind: InferenceClass
metadata: {name: h100-8x-acct}
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
metadata:
  name: acct
  labels: {modelplane.ai/region: acct}
spec:
  cluster:
    source: Existing
    existing:
      secretRef: {name: acct-kubeconfig, key: kubeconfig}
  nodePools:
  - {name: big, className: h100-8x-acct, nodeCount: 2}
"""


@pytest.fixture(scope="module")
def acct(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Cluster]]:
    """The cluster `acct` in the fleet and known to the control cluster, and the three
    services running; afterwards everything placed there is drained and it is removed."""
    folder = tmp_path_factory.mktemp("acct")
    (folder / "fleet.yaml").write_text(FLEET)
    (entry,) = fleetfile.read([folder / "fleet.yaml"])
    local_fleet.add(entry)
    control = local_fleet.cluster("control")
    address = control.plan.address
    logs = tmp_path_factory.mktemp("services")
    running: dict[str, Service] = {
        "cluster-provisioner": cluster_provisioner(
            local_fleet, 9151, FLEET_API_PORT, logs / "cp.log"
        ),
        "fleet-scheduler": fleet_scheduler(local_fleet, 9152, 50252, logs / "fs.log"),
        "endpoint-manager": endpoint_manager(
            local_fleet, 9153, f"{address}:{FLEET_API_PORT}", logs / "em.log"
        ),
    }
    try:
        control.kubectl("apply", "-f", str(folder / "fleet.yaml"))
        with serving(control, running, clusters=("acct",), drain=True):
            try:
                yield control, local_fleet.cluster("acct")
            finally:
                control.kubectl("delete", "modeldeployments", "--all", "-A", "--wait=false")
                wait_for("no replica on acct", lambda: not replicas_on(control), 180)
                control.kubectl("delete", "inferencecluster", "acct", "--timeout=60s")
    finally:
        local_fleet.remove("acct")


def replicas_on(control: Cluster, namespace: str = "") -> list[Json]:
    where = ["-n", namespace] if namespace else ["-A"]
    found = items(control, "modelreplicas", *where)
    return [r for r in found if r["spec"]["clusterName"] == "acct"]


def gpus(name: str, namespace: str, count: int, replicas: int) -> Json:
    request = {"name": "gpu", "count": count, "selectors": [{"cel": HOPPER}]}
    args = ["--model=Qwen/Qwen2.5-0.5B-Instruct", f"--served-model-name={name}"]
    container = {"name": "engine", "image": "vllm/vllm-openai:v0.23.0", "args": args}
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "clusterSelector": {"matchLabels": {"modelplane.ai/region": "acct"}},
            "engines": [{"name": "e", "members": [{
                "role": "Standalone", "nodeSelector": {"devices": [request]},
                "template": {"spec": {"containers": [container]}}}]}],
        },
    }  # fmt: skip


def extension_status(control: Cluster) -> Json:
    found: Json = (get(control, "inferencecluster", "acct").get("status") or {}).get(
        "schedulerExtension"
    ) or {}
    return found


def bound_pods(cluster: Cluster, namespace: str, wanted: int) -> list[Json] | None:
    pods = [p for p in items(cluster, "pods", "-n", namespace) if p["spec"].get("nodeName")]
    return pods if len(pods) == wanted else None


def pods_on_gpu_nodes(cluster: Cluster) -> list[str]:
    """namespace/name@node of every pod on acct's pool nodes (its system node excluded)."""
    pool = {n["metadata"]["name"] for n in items(cluster, "nodes", "-l", POOL_LABEL)}
    return [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}@{p['spec']['nodeName']}"
        for p in items(cluster, "pods", "-A")
        if p["spec"].get("nodeName") in pool
    ]


def failed_scheduling(cluster: Cluster, namespace: str, pod: str) -> Json | None:
    """The scheduler's latest FailedScheduling event for the pod, once there is one."""
    events = items(cluster, "events", "-n", namespace, "--field-selector",
                   f"involvedObject.name={pod},reason=FailedScheduling")  # fmt: skip
    return events[-1] if events else None


def not_scheduled(control: Cluster, namespace: str, name: str) -> Json | None:
    """The deployment's Scheduled condition once it is False (a replica fits nowhere)."""
    found = condition(get(control, "modeldeployment", "-n", namespace, name), "Scheduled")
    return found if found.get("status") == "False" else None


def test_with_the_extension_the_fleet_places_all_five_and_every_pod_binds(
    acct: tuple[Cluster, Cluster], namespace: str
) -> None:
    control, cluster = acct
    wait_for("acct in Device accounting",
             lambda: extension_status(control).get("accounting") == "Device", 60)  # fmt: skip
    assert extension_status(control)["health"] == "Healthy"
    apply(control, gpus("small", namespace, 2, 4))
    wait_for("four small replicas", lambda: len(replicas_on(control, namespace)) == 4, 60)
    apply(control, gpus("big", namespace, 8, 1))
    wait_for("five replicas", lambda: len(replicas_on(control, namespace)) == 5, 60)
    pods = wait_for("the five pods bound", lambda: bound_pods(cluster, namespace, 5), 240)
    assert {p["spec"].get("schedulerName") for p in pods} == {extension.SCHEDULER_NAME}
    nodes = {p["metadata"]["labels"]["modelplane.ai/deployment"]: set[str]() for p in pods}
    for pod in pods:
        nodes[pod["metadata"]["labels"]["modelplane.ai/deployment"]].add(pod["spec"]["nodeName"])
    assert len(nodes["small"]) == 1, f"the 2-GPU pods spread: {nodes}"
    assert nodes["big"].isdisjoint(nodes["small"])

    # The extender stops: acct is counted in whole nodes again. The five replicas (five
    # whole nodes by that rule, on a pool of two) all stay; a new one gets no place.
    process.stop(cluster.record_path(extension.EXTENDER_COMPONENT), grace_s=5)
    wait_for("acct back in Node accounting",
             lambda: extension_status(control).get("accounting") == "Node", 60)  # fmt: skip
    assert extension_status(control)["health"] == "Unhealthy"
    before = {r["metadata"]["name"] for r in replicas_on(control, namespace)}
    apply(control, gpus("more", namespace, 1, 1))
    said = wait_for("more not scheduled", lambda: not_scheduled(control, namespace, "more"), 60)
    assert "needed nodes free" in said["message"], said
    assert {r["metadata"]["name"] for r in replicas_on(control, namespace)} == before
    assert len(before) == 5


def test_without_the_extension_the_eight_gpu_pod_strands_and_the_fleet_never_places_it(
    acct: tuple[Cluster, Cluster], namespace: str
) -> None:
    """(After the test above: its extender is stopped.) The same workload without the
    extension. Made as plain pods for acct's default kube-scheduler, four 2-GPU pods bind
    on both nodes (it does not pack DRA claims) and the 8-GPU pod stays Pending though
    eight of the sixteen GPUs are free. Applied as ModelDeployments with acct in Node
    accounting, the fleet places two 2-GPU replicas (a whole node each), refuses the
    other two and the 8-GPU one, and every pod it did make binds."""
    control, cluster = acct
    wait_for("acct empty", lambda: not replicas_on(control), 180)
    wait_for("no claim left on acct", lambda: not items(cluster, "resourceclaims", "-A"), 180)
    # Both GPU nodes empty (a pod still terminating counts against its node's score), so
    # what follows is the default scheduler's choice on two equal nodes.
    wait_for("acct's GPU nodes empty", lambda: not pods_on_gpu_nodes(cluster), 180)
    if extension_status(control).get("accounting") != "Node":
        process.stop(cluster.record_path(extension.EXTENDER_COMPONENT), grace_s=5)
        wait_for("acct in Node accounting",
                 lambda: extension_status(control).get("accounting") == "Node", 60)  # fmt: skip

    cluster.kubectl("create", "namespace", PLAIN)
    try:
        apply(cluster, claim_template("two", PLAIN, 2), claim_template("eight", PLAIN, 8))
        small = [f"small-{i}" for i in range(4)]
        # As engines do, each asks for CPU too: the default scheduler's least-allocated
        # scoring then spreads them deterministically (it does not score DRA devices; with
        # no request at all the two equal nodes tie and it picks at random, packing 1 in 8)
        apply(cluster, *(gpu_pod(name, PLAIN, "two", cpu="1") for name in small))
        pods = wait_for("the four 2-GPU pods bound", lambda: bound_pods(cluster, PLAIN, 4), 120)
        spread = {p["spec"]["nodeName"] for p in pods}
        assert len(spread) == 2, f"the 2-GPU pods packed on {spread}: {pods_on_gpu_nodes(cluster)}"
        apply(cluster, gpu_pod("whole", PLAIN, "eight"))
        said = wait_for("the 8-GPU pod unschedulable",
                        lambda: failed_scheduling(cluster, PLAIN, "whole"), 60)  # fmt: skip
        assert get(cluster, "pod", "-n", PLAIN, "whole")["spec"].get("nodeName") is None, said
        assert len(allocated(cluster, PLAIN)) == 8, "eight GPUs taken, eight free"
    finally:
        cluster.kubectl("delete", "namespace", PLAIN, "--wait=true", "--timeout=120s")

    apply(control, gpus("small", namespace, 2, 4))
    said = wait_for("small short", lambda: not_scheduled(control, namespace, "small"), 60)
    assert "needed nodes free" in said["message"], said
    apply(control, gpus("big", namespace, 8, 1))
    said = wait_for("big not scheduled", lambda: not_scheduled(control, namespace, "big"), 60)
    assert "needed nodes free" in said["message"], said
    placed = replicas_on(control, namespace)
    assert sorted(r["metadata"]["labels"][DEPLOYMENT_LABEL] for r in placed) == ["small"] * 2
    pods = wait_for("the two pods bound", lambda: bound_pods(cluster, namespace, 2), 240)
    assert all(p["spec"].get("schedulerName") in (None, "default-scheduler") for p in pods)
    assert len(items(cluster, "pods", "-n", namespace)) == 2, "no pod of the fleet's is Pending"
