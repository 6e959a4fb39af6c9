"""What an in-cluster client needs, as a pod of the local fleet gets it.

A `modelplane/python-probe` pod runs a Python script as its process (the node
agent's mapped test image). On the control cluster's system pool it finds its
service-account token, `ca.crt` and namespace where every client library looks
(`/var/run/secrets/kubernetes.io/serviceaccount`), reaches the API server at
`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` (the `kubernetes`
Service's ClusterIP, routed by the real kube-proxy), lists the pods of its
namespace (RBAC granted here), resolves `kubernetes.default.svc.cluster.local`
(the node agent's hosts file) and sees a ConfigMap volume change while it runs.
On an inference cluster (no kube-proxy there) the same client reaches its own
API server at that server's address. A Deployment's pods are restarted when
their process is killed and replaced when deleted; with two replicas electing
a leader (`modelplane.leader`, connected in-cluster from the service-account
files as the control plane's services are), the survivor takes the Lease when
the leader's pod is killed.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.kube import Json, apply, get, is_ready, items, wait_for

pytestmark = pytest.mark.usefixtures("local_fleet")

IMAGE = "modelplane/python-probe"
CLIENT = """
import json, os, socket, ssl, time, urllib.request
account = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(f"{account}/token").read()
namespace = open(f"{account}/namespace").read()
context = ssl.create_default_context(cafile=f"{account}/ca.crt")
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
request = urllib.request.Request(
    f"https://{host}:{port}/api/v1/namespaces/{namespace}/pods",
    headers={"Authorization": f"Bearer {token}"},
)
pods = json.load(urllib.request.urlopen(request, context=context, timeout=10))
print(json.dumps({
    "namespace": namespace,
    "service_host": host,
    "pods": [p["metadata"]["name"] for p in pods["items"]],
    "resolved": socket.gethostbyname("kubernetes.default.svc.cluster.local"),
}), flush=True)
seen = None
while True:
    greeting = open("/etc/greeting/text").read()
    if greeting != seen:
        print(json.dumps({"greeting": greeting}), flush=True)
        seen = greeting
    time.sleep(0.2)
"""


def _config_map(namespace: str, text: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "greeting", "namespace": namespace},
        "data": {"text": text},
    }


def _grants(namespace: str) -> Json:
    """The namespace's default service account may read (`view`) its namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "default-view", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }


def _client_pod(namespace: str, **spec: object) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "client",
                    "image": IMAGE,
                    "command": ["python", "-c", CLIENT],
                    "volumeMounts": [{"name": "greeting", "mountPath": "/etc/greeting"}],
                }
            ],
            "volumes": [{"name": "greeting", "configMap": {"name": "greeting"}}],
            **spec,
        },
    }


def _output(fleet: Fleet, cluster: str, pod: Json) -> list[Json]:
    """The JSON lines the pod's container printed (its log under the node agent's pod dir)."""
    meta = pod["metadata"]
    folder = f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
    log = fleet.state / "run" / cluster / "node-agent" / "pods" / folder / "logs" / "client.log"
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _run_client(fleet: Fleet, cluster: Cluster, namespace: str, **spec: object) -> Json:
    """Start the client pod; its first report once it has one."""
    apply(cluster, _config_map(namespace, "hello"), _grants(namespace))
    apply(cluster, _client_pod(namespace, **spec))
    pod = wait_for(
        "the client pod to run",
        lambda: (p := get(cluster, "pod", "-n", namespace, "client")).get("status", {}).get("phase")
        == "Running"
        and p,
        timeout_s=60,
    )
    reports = wait_for(
        "the client's report", lambda: _output(fleet, cluster.name, pod), timeout_s=60
    )
    return {"pod": pod, "report": reports[0]}


def _sees_greeting_change(fleet: Fleet, cluster: Cluster, namespace: str, pod: Json) -> None:
    wait_for(
        "the first greeting",
        lambda: {"greeting": "hello"} in _output(fleet, cluster.name, pod),
    )
    apply(cluster, _config_map(namespace, "bonjour"))
    wait_for(
        "the changed greeting in the running process",
        lambda: {"greeting": "bonjour"} in _output(fleet, cluster.name, pod),
        timeout_s=30,
    )


def test_a_system_pool_pod_reaches_its_api_server_through_the_cluster_ip(
    local_fleet: Fleet, namespace: str
) -> None:
    control = local_fleet.cluster("control")
    started = _run_client(
        local_fleet, control, namespace, nodeSelector={"modelplane.ai/system": "true"}
    )
    pod, report = started["pod"], started["report"]
    cluster_ip = get(control, "service", "-n", "default", "kubernetes")["spec"]["clusterIP"]
    assert pod["spec"]["nodeName"] in {"control-system-0", "control-system-1"}
    assert report == {
        "namespace": namespace,
        "service_host": cluster_ip,
        "pods": ["client"],
        "resolved": cluster_ip,
    }
    _sees_greeting_change(local_fleet, control, namespace, pod)


def test_an_inference_cluster_pod_reaches_its_own_api_server(
    local_fleet: Fleet, east: Cluster, east_namespace: str
) -> None:
    started = _run_client(local_fleet, east, east_namespace)
    report = started["report"]
    apiserver = get(east, "endpointslice", "-n", "default", "kubernetes")["endpoints"][0]
    assert report["service_host"] == apiserver["addresses"][0] == east.plan.address
    assert report["resolved"] == east.plan.address
    assert report["pods"] == ["client"]


ELECTION = """
import asyncio, logging, os
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
logging.basicConfig(level=logging.INFO)
async def main():
    kube = await Kube.connect(None, "e2e")  # in-cluster: the service-account files
    namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
    await LeaderElector(kube, namespace, "sleeper", os.environ["HOSTNAME"], 4, 1).run()
asyncio.run(main())
"""


def _deployment(namespace: str, script: str = "import time; time.sleep(3600)") -> Json:
    labels = {"app": "sleeper"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sleeper", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "nodeSelector": {"modelplane.ai/system": "true"},
                    "containers": [
                        {
                            "name": "sleeper",
                            "image": IMAGE,
                            "command": ["python", "-c", script],
                        }
                    ],
                },
            },
        },
    }


def _ready_pods(control: Cluster, namespace: str) -> list[Json] | None:
    pods = items(control, "pods", "-n", namespace, "-l", "app=sleeper")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return live if len(live) == 2 and all(is_ready(p) for p in live) else None


def _pid(pod: Json) -> int:
    return int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("localfleet://"))


def test_a_deployments_killed_pod_is_restarted_and_a_deleted_one_replaced(
    local_fleet: Fleet, namespace: str
) -> None:
    control = local_fleet.cluster("control")
    apply(control, _deployment(namespace))
    first, second = wait_for("two ready replicas", lambda: _ready_pods(control, namespace))

    os.kill(_pid(first), signal.SIGKILL)
    restarted = wait_for(
        "the killed container restarted",
        lambda: (p := get(control, "pod", "-n", namespace, first["metadata"]["name"]))
        and p["status"]["containerStatuses"][0].get("restartCount", 0) >= 1
        and is_ready(p)
        and p,
    )
    assert _pid(restarted) != _pid(first)
    assert Path(f"/proc/{_pid(restarted)}").exists()

    control.kubectl("delete", "pod", "-n", namespace, second["metadata"]["name"], "--wait=false")

    def replicas() -> set[str] | None:
        pods = _ready_pods(control, namespace) or []
        names = {p["metadata"]["name"] for p in pods}
        return names if len(names) == 2 and second["metadata"]["name"] not in names else None

    names = wait_for("a new replica instead of the deleted one", replicas)
    assert first["metadata"]["name"] in names
    assert len(names) == 2


def _lease_grants(namespace: str) -> list[Json]:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "leases", "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "list", "watch", "create", "update"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "leases", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leases"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }
    return [role, binding]


def _holder(control: Cluster, namespace: str) -> str | None:
    found = control.kubectl("get", "lease", "-n", namespace, "sleeper", "-o", "json", check=False)
    if found.returncode != 0:
        return None
    holder = json.loads(found.stdout)["spec"].get("holderIdentity")
    return str(holder) if holder else None


def test_when_the_leaders_pod_is_killed_the_other_replica_takes_the_lease(
    local_fleet: Fleet, namespace: str
) -> None:
    control = local_fleet.cluster("control")
    apply(control, *_lease_grants(namespace), _deployment(namespace, ELECTION))
    pods = wait_for("two ready replicas", lambda: _ready_pods(control, namespace))
    names = {p["metadata"]["name"] for p in pods}
    leader = wait_for("a leader", lambda: _holder(control, namespace), timeout_s=60)
    assert leader in names

    control.kubectl("delete", "pod", "-n", namespace, leader, "--grace-period=0", "--force")
    successor = wait_for(
        "the lease held by another replica",
        lambda: (holder := _holder(control, namespace)) not in (None, leader) and holder,
        timeout_s=60,
    )
    live = {
        p["metadata"]["name"] for p in items(control, "pods", "-n", namespace, "-l", "app=sleeper")
    }
    # The survivor, or (if it started in time) the replica the Deployment made instead.
    assert successor in live
    assert leader not in live
