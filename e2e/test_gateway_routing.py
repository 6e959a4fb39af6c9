"""Gateway routing on an inference cluster: Traefik, an HTTPRoute with a prefix rewrite,
and simulator pods found through their Service's EndpointSlice.

Every served request is checked for the identity of the pod that answered: the
simulator puts its pod's name and IP in the reply, and it only listens on that
pod's IP.
"""

from __future__ import annotations

import pytest
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.layout import PORTS

from e2e.kube import Json, apply, gateway, is_ready, items, prefix_route, wait_for
from e2e.simulator import call, engine_container

pytestmark = pytest.mark.usefixtures("local_fleet")
REPLICAS = 3


def objects(namespace: str) -> list[Json]:
    labels = {"app": "sim"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "sim", "namespace": namespace},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [engine_container("--served-model-name=tiny-chat")],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "sim", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 8000}]},
        },
        gateway("inference", namespace, PORTS.gateway_web),
        prefix_route("sim", namespace, "inference", f"/{namespace}/sim", "sim"),
    ]


def ready_pods(east: Cluster, namespace: str) -> dict[str, str]:
    """Ready pods by name, with their IPs."""
    return {
        p["metadata"]["name"]: p["status"]["podIP"]
        for p in items(east, "pods", "-n", namespace, "-l", "app=sim")
        if is_ready(p)
    }


def all_ready(east: Cluster, namespace: str) -> dict[str, str] | None:
    found = ready_pods(east, namespace)
    return found if len(found) == REPLICAS else None


def ready_endpoints(east: Cluster, namespace: str) -> set[str]:
    slices = items(east, "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=sim")
    return {
        address
        for s in slices
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready")
        for address in e["addresses"]
    }


def served_by(url: str, requests: int) -> dict[str, str]:
    """Pod name -> pod IP for every pod that answered one of `requests` GETs."""
    seen = {}
    for _ in range(requests):
        reply = call(url)
        assert reply.status == 200, reply
        assert reply.body["data"][0]["id"] == "tiny-chat"
        seen[reply.pod.split("/")[-1]] = reply.pod_ip
    return seen


def test_a_prefix_route_reaches_every_ready_pod_and_drops_one_that_turns_unready(
    east: Cluster, east_namespace: str
) -> None:
    apply(east, *objects(east_namespace))
    pods = wait_for(f"{REPLICAS} Ready simulator pods", lambda: all_ready(east, east_namespace))
    wait_for(
        "the EndpointSlice to list them",
        lambda: ready_endpoints(east, east_namespace) == set(pods.values()),
    )
    base = f"http://{east.plan.address}:{PORTS.gateway_web}/{east_namespace}/sim"
    wait_for("the route to serve", lambda: call(f"{base}/v1/models").status == 200, timeout_s=30)

    # Traefik applies EndpointSlice changes after a short throttle: wait for all of them.
    wait_for("every Ready pod to be served", lambda: served_by(f"{base}/v1/models", 15) == pods, 30)
    assert served_by(f"{base}/v1/models", 30) == pods

    chat = call(
        f"{base}/v1/chat/completions",
        {
            "model": "tiny-chat",
            "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": 4,
        },
    )
    assert chat.status == 200, chat
    assert chat.body["choices"][0]["message"]["role"] == "assistant"
    assert pods[chat.pod.split("/")[-1]] == chat.pod_ip

    name, address = sorted(pods.items())[0]
    fault = call(f"http://{address}:8000/simulator/health", {"healthy": False})
    assert fault.status == 200, fault
    wait_for(f"pod {name} to turn unready", lambda: name not in ready_pods(east, east_namespace))
    wait_for(
        "its endpoint to leave the slice",
        lambda: address not in ready_endpoints(east, east_namespace),
    )
    rest = {n: a for n, a in pods.items() if n != name}
    wait_for(
        "the gateway to stop sending it requests",
        lambda: served_by(f"{base}/v1/models", 12) == rest,
        timeout_s=30,
    )
    assert served_by(f"{base}/v1/models", 30) == rest
