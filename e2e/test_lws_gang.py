"""LeaderWorkerSet gangs on the local fleet: one leader and its workers, each on its own
node with its own IP, joined at the address the LWS webhook injected.

Each pod claims the single L4 of an `l4` node, so the gang of three needs all
three nodes. The workers select a node label no node has at first, so the
leader is seen Running but not Ready, with no worker joined, until the test
labels the nodes and the workers start.
"""

from __future__ import annotations

import time

import pytest
from modelplane_localfleet.cluster import Cluster

from e2e.kube import Json, apply, condition, is_ready, items, wait_for
from e2e.simulator import call, engine_container
from e2e.test_dra_binding import claim_template

pytestmark = pytest.mark.usefixtures("local_fleet")
ADA = 'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"'
SIZE = 3


GATE = "e2e-gang"


def pod_template(*, gated: bool) -> Json:
    container = engine_container()
    container["resources"] = {"claims": [{"name": "gpu"}]}
    spec: Json = {
        "terminationGracePeriodSeconds": 2,
        "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "l4"}],
        "containers": [container],
    }
    if gated:
        spec["nodeSelector"] = {GATE: "open"}
    return {"spec": spec}


def leaderworkerset(namespace: str) -> Json:
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "gang", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": SIZE,
                "leaderTemplate": pod_template(gated=False),
                "workerTemplate": pod_template(gated=True),
            },
        },
    }


def gang(east: Cluster, namespace: str) -> dict[str, Json]:
    pods = items(east, "pods", "-n", namespace, "-l", "leaderworkerset.sigs.k8s.io/name=gang")
    return {p["metadata"]["name"]: p for p in pods if not p["metadata"].get("deletionTimestamp")}


def complete(east: Cluster, namespace: str) -> dict[str, Json] | None:
    pods = gang(east, namespace)
    return pods if len(pods) == SIZE and all(is_ready(p) for p in pods.values()) else None


def group(address: str) -> Json:
    reply = call(f"http://{address}:8000/v1/group")
    assert reply.status == 200, reply
    body: Json = reply.body
    return body


def group_if_serving(address: str) -> Json | None:
    try:
        return group(address)
    except OSError:
        return None


def check_joined(pods: dict[str, Json], namespace: str) -> None:
    leader = pods["gang-0"]
    leader_ip = leader["status"]["podIP"]
    workers = {n: p["status"]["podIP"] for n, p in pods.items() if n != "gang-0"}
    assert set(workers) == {"gang-0-1", "gang-0-2"}
    seen = group(leader_ip)
    assert seen["role"] == "leader"
    assert {w["pod"]: w["ip"] for w in seen["workers"]} == workers
    for ip in workers.values():
        joined = group(ip)
        assert joined["role"] == "worker"
        assert joined["leader_address"] == f"gang-0.gang.{namespace}"
        assert joined["leader_ip"] == leader_ip


def pending_workers(east: Cluster, namespace: str) -> list[Json] | None:
    workers = [p for n, p in gang(east, namespace).items() if n != "gang-0"]
    pending = [p for p in workers if p["status"].get("phase") == "Pending"]
    return pending if len(pending) == SIZE - 1 else None


def test_a_gang_of_three_joins_its_leader_and_restarts_as_a_group(
    east: Cluster, east_namespace: str
) -> None:
    apply(east, claim_template("l4", east_namespace, ADA), leaderworkerset(east_namespace))

    def leader_serving() -> tuple[Json, Json] | None:
        leader = gang(east, east_namespace).get("gang-0")
        if not leader or leader["status"].get("phase") != "Running":
            return None
        seen = group_if_serving(leader["status"]["podIP"])
        return (leader, seen) if seen else None

    wait_for("both workers waiting for the gate", lambda: pending_workers(east, east_namespace))
    leader, early = wait_for("the leader serving", leader_serving)
    assert early["workers"] == []
    time.sleep(2)  # several readiness probes of the leader
    leader = gang(east, east_namespace)["gang-0"]
    assert condition(leader, "Ready")["status"] == "False"
    east.kubectl("label", "nodes", "-l", "modelplane.ai/pool=l4", f"{GATE}=open", "--overwrite")
    try:
        pods = wait_for("the whole gang Ready", lambda: complete(east, east_namespace), 90)
        nodes = {p["spec"]["nodeName"] for p in pods.values()}
        assert len(nodes) == SIZE and all(n.startswith("east-l4-") for n in nodes), nodes
        assert len({p["status"]["podIP"] for p in pods.values()}) == SIZE
        check_joined(pods, east_namespace)

        before = {p["metadata"]["uid"] for p in pods.values()}
        east.kubectl("delete", "pod", "-n", east_namespace, "gang-0", "--wait=false")

        def restarted() -> dict[str, Json] | None:
            now = complete(east, east_namespace)
            if now and not before & {p["metadata"]["uid"] for p in now.values()}:
                return now
            return None

        again = wait_for("the gang restarted as a whole and Ready", restarted, timeout_s=120)
        check_joined(again, east_namespace)
    finally:
        east.kubectl("label", "nodes", "-l", "modelplane.ai/pool=l4", f"{GATE}-")
