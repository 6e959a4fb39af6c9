"""What the harness installs besides Kubernetes: LeaderWorkerSet (controller and
webhooks) on inference clusters, and Traefik routing Gateway API traffic on every
cluster. Local backend only (kind would need the images from a registry).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.layout import PORTS

from e2e.kube import Json, gateway, prefix_route, wait_for

pytestmark = pytest.mark.usefixtures("local_fleet")

BACKEND_ADDRESS = "10.244.250.10"


def _lws(name: str, namespace: str, size: int) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": size,
                "workerTemplate": {
                    "spec": {
                        "containers": [{"name": "engine", "image": "example.invalid/engine:1"}]
                    }
                },
            },
        },
    }


def test_a_leaderworkerset_gets_its_gang_with_the_webhooks_labels_and_env(
    local_fleet: Fleet,
) -> None:
    east = local_fleet.cluster("east")
    east.kubectl("create", "namespace", "gang-test")
    east.kubectl("apply", "-f", "-", stdin=json.dumps(_lws("gang", "gang-test", 3)))

    def pods() -> list[dict] | None:  # type: ignore[type-arg]
        out = east.kubectl("get", "pods", "-n", "gang-test", "-o", "json").stdout
        items = json.loads(out)["items"]
        return items if len(items) == 3 else None

    by_name = {p["metadata"]["name"]: p for p in wait_for("the gang's 3 pods", pods)}
    assert set(by_name) == {"gang-0", "gang-0-1", "gang-0-2"}
    statefulsets = east.kubectl(
        "get", "statefulsets", "-n", "gang-test", "-o", "name"
    ).stdout.split()
    assert sorted(statefulsets) == ["statefulset.apps/gang", "statefulset.apps/gang-0"]
    for name, worker_index in (("gang-0", "0"), ("gang-0-1", "1"), ("gang-0-2", "2")):
        labels = by_name[name]["metadata"]["labels"]
        assert labels["leaderworkerset.sigs.k8s.io/group-index"] == "0"
        assert labels["leaderworkerset.sigs.k8s.io/worker-index"] == worker_index
        assert labels["leaderworkerset.sigs.k8s.io/group-key"]
        env = {e["name"]: e.get("value") for e in by_name[name]["spec"]["containers"][0]["env"]}
        assert env["LWS_LEADER_ADDRESS"] == "gang-0.gang.gang-test"
        assert env["LWS_GROUP_SIZE"] == "3"
        assert env["LWS_WORKER_INDEX"] == worker_index


def test_the_lws_webhook_rejects_an_invalid_leaderworkerset(local_fleet: Fleet) -> None:
    bad = _lws("bad", "default", 2)
    bad["spec"]["leaderWorkerTemplate"]["subGroupPolicy"] = {"subGroupSize": 3}
    result = local_fleet.cluster("west").kubectl(
        "apply", "-f", "-", stdin=json.dumps(bad), check=False
    )
    assert result.returncode != 0
    assert 'admission webhook "vleaderworkerset.kb.io" denied the request' in result.stderr
    assert "subGroupSize" in result.stderr


def test_ordinary_pods_do_not_depend_on_the_lws_webhook(local_fleet: Fleet) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/plain:1"}]},
    }
    west = local_fleet.cluster("west")
    west.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    labels = json.loads(west.kubectl("get", "pod", "plain", "-o", "json").stdout)["metadata"]
    assert "leaderworkerset.sigs.k8s.io/worker-index" not in labels.get("labels", {})


@pytest.fixture
def backend_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on a pod-range address inside the fleet's namespace."""
    (tmp_path / "hello.txt").write_text("hello through the gateway\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "8000", "--bind", BACKEND_ADDRESS],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield BACKEND_ADDRESS
    finally:
        server.terminate()
        server.wait(10)


def _gateway_objects(namespace: str, backend: str) -> list[Json]:
    return [
        gateway("edge", namespace, PORTS.gateway_web),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "backend", "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": 8000, "protocol": "TCP"}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "backend-1",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": "backend"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
            "endpoints": [{"addresses": [backend], "conditions": {"ready": True}}],
        },
        prefix_route("files", namespace, "edge", "/files", "backend"),
    ]


@pytest.mark.parametrize("cluster_name", ["control", "east"])
def test_traefik_programs_a_gateway_and_routes_to_a_backend_inside_the_fleet(
    local_fleet: Fleet, backend_server: str, cluster_name: str
) -> None:
    cluster = local_fleet.cluster(cluster_name)
    namespace = f"gateway-{cluster_name}"
    cluster.kubectl("create", "namespace", namespace)
    stream = "\n".join(json.dumps(o) for o in _gateway_objects(namespace, backend_server))
    cluster.kubectl("apply", "-f", "-", stdin=stream)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Programmed", "--timeout=60s", "gateway/edge"
    )
    gateway = json.loads(
        cluster.kubectl("get", "gateway", "edge", "-n", namespace, "-o", "json").stdout
    )
    assert gateway["status"]["addresses"] == [{"type": "IPAddress", "value": cluster.plan.address}]

    url = f"http://{cluster.plan.address}:{PORTS.gateway_web}/files/hello.txt"

    def fetch() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return str(reply.read().decode())
        except OSError:
            return None

    assert wait_for("the route to serve", fetch, timeout_s=30) == "hello through the gateway\n"
