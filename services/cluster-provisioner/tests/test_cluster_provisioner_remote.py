"""What an inference cluster carries reaches its status through that cluster's watches:
read off the cached objects (pure), and followed as they change, with no polling."""

from __future__ import annotations

import asyncio
import base64
from typing import Any, cast

import pytest
from cluster_provisioner import observe
from cluster_provisioner.controller import CLASSES, CLUSTERS, REPLICAS, Provisioner
from cluster_provisioner.remote import ClusterViews
from cluster_provisioner.status import Inspection
from modelplane.cache import Cache, Lister
from modelplane.kube import Kube
from modelplane.leader import LeaderElector

from tests.fakekube import FakeKube, settle

NAMESPACE = "modelplane-system"
SECRETS = observe.secrets_path(NAMESPACE)
NODES = "/api/v1/nodes"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
GATEWAYS = "/apis/gateway.networking.k8s.io/v1/namespaces/modelplane-system/gateways"
STACK = (
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "leaderworkersets.leaderworkerset.x-k8s.io",
)
Json = dict[str, Any]


def node(name: str, pool: str, ready: str = "True") -> Json:
    return {
        "metadata": {"name": name, "labels": {"modelplane.ai/pool": pool}},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def gateway(address: str | None) -> Json:
    status = {"addresses": [{"type": "IPAddress", "value": address}]} if address else {}
    return {
        "metadata": {"name": "modelplane-inference", "namespace": "modelplane-system"},
        "status": status,
    }


def served(crds: tuple[str, ...] = STACK, address: str | None = "10.240.0.2") -> FakeKube:
    """An inference cluster's API server: pool nodes, the stack's CRDs, its Gateway."""
    kube = FakeKube()
    for name, pool in (("n1", "l4"), ("n2", "l4"), ("n3", "h100")):
        kube.put(NODES, node(name, pool))
    kube.put(NODES, node("n4", "l4", ready="False"))
    kube.put(NODES, {"metadata": {"name": "plain"}, "status": {}})  # in no pool
    for name in crds:
        kube.put(CRDS, {"metadata": {"name": name}})
    kube.put(CRDS, {"metadata": {"name": "other.example.com"}})
    if "gateways.gateway.networking.k8s.io" not in crds:
        kube.absent.add(GATEWAYS)
    elif address != "absent":
        kube.put(GATEWAYS, gateway(address))
    return kube


def inspected(kube: FakeKube) -> Inspection:
    """The cluster's Inspection once its watches have listed."""
    views = ClusterViews(connect=lambda _config: _served(kube))

    async def main() -> Inspection | None:
        assert await views.inspect("east", "config") is None  # not listed yet
        await settle()
        found = await views.inspect("east", "config")
        await views.forget("east")
        return found

    found = asyncio.run(main())
    assert found is not None
    return found


async def _served(kube: FakeKube) -> Lister:
    return kube


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (served(), Inspection("", (), "10.240.0.2", "", {"l4": 2, "h100": 1})),
        (
            served(crds=STACK[1:]),
            Inspection("", (STACK[0],), None, "", {"l4": 2, "h100": 1}),
        ),
        (
            served(address=None),
            Inspection(
                "", (), None, "Gateway modelplane-system/modelplane-inference has no address",
                {"l4": 2, "h100": 1},
            ),
        ),
        (
            served(address="absent"),
            Inspection(
                "", (), None, "Gateway modelplane-system/modelplane-inference not found",
                {"l4": 2, "h100": 1},
            ),
        ),
    ],
    ids=["ready", "a CRD missing", "gateway without address", "no gateway"],
)  # fmt: skip
def test_the_inspection_is_read_off_the_watched_objects(
    server: FakeKube, expected: Inspection
) -> None:
    assert inspected(server) == expected
    assert server.count("get") == len(observe.remote_paths())  # one list each, no poll


def test_a_cluster_that_cannot_be_read_says_why() -> None:
    assert observe.inspection(lambda _path: [], "connection refused") == Inspection(
        error="connection refused"
    )


KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: https://x}}]\n"


class Control:
    """The control cluster: records status patches and keeps the cached cluster current."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.statuses: list[Json] = []

    async def merge_patch(self, path: str, body: Json) -> Json:
        self.statuses.append(body["status"])
        self.cache.informers[CLUSTERS].objects["east"]["status"] = body["status"]
        return body

    async def own_finalizers(self, path: str, obj: Json, finalizers: list[str]) -> Json:
        self.cache.informers[CLUSTERS].objects["east"]["metadata"]["finalizers"] = finalizers
        return {}


class Elector:
    is_leader = True


def east_nodes(status: Json) -> dict[str, int]:
    return {p["name"]: p["nodes"] for p in status["pools"]}


def ready(status: Json) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == "Ready")
    return found["status"], found["reason"]


def test_a_change_on_the_cluster_queues_it_and_reaches_its_status_with_no_request() -> None:
    remote = served()
    cache = Cache(cast(Lister, None), [CLUSTERS, CLASSES, REPLICAS, SECRETS])
    cache.informers[CLUSTERS].objects["east"] = {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
        "metadata": {"name": "east", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "cluster": {"source": "Existing", "existing": {"secretRef": {"name": "east-kc"}}},
            "nodePools": [{"name": "l4", "className": "l4", "nodeCount": 3}],
        },
    }  # fmt: skip
    cache.informers[CLASSES].objects["l4"] = {"metadata": {"name": "l4"}, "spec": {}}
    cache.informers[SECRETS].objects[f"{NAMESPACE}/east-kc"] = {
        "metadata": {"name": "east-kc", "namespace": NAMESPACE},
        "data": {"kubeconfig": base64.b64encode(KUBECONFIG.encode()).decode()},
    }
    control = Control(cache)
    views = ClusterViews(connect=lambda _config: _served(remote))
    provisioner = Provisioner(
        cast(Kube, control), NAMESPACE, cast(LeaderElector, Elector()), cache, views
    )
    queued: list[str] = []
    views.on_change = queued.append

    async def until_queued() -> None:
        while not queued:
            await asyncio.sleep(0.01)  # a lost server's informers back off for real
        await provisioner.reconcile_key(queued.pop())
        queued.clear()

    async def main() -> None:
        assert await provisioner.reconcile_key("east") is None
        assert control.statuses == []  # nothing decided before the watches have listed
        await until_queued()
        assert ready(control.statuses[-1]) == ("True", "ClusterReady")
        assert east_nodes(control.statuses[-1]) == {"l4": 2}
        remote.put(NODES, node("n5", "l4"))
        await until_queued()
        assert east_nodes(control.statuses[-1]) == {"l4": 3}
        remote.remove(NODES, "", "n1")
        await until_queued()
        assert east_nodes(control.statuses[-1]) == {"l4": 2}
        lists = remote.count("get")
        remote.failing_lists = 100
        remote.break_watches()
        await until_queued()
        status = control.statuses[-1]
        assert ready(status) == ("False", "ClusterUnreachable")
        assert (status["gatewayAddress"], east_nodes(status)) == ("10.240.0.2", {"l4": 2})
        assert lists == len(observe.remote_paths())  # followed by watches alone until then
        await views.forget("east")

    asyncio.run(main())


def test_the_extenders_lease_is_watched_on_the_cluster() -> None:
    server = served()
    lease = {"metadata": {"name": "modelplane-scheduler-extender", "namespace": "kube-system"},
             "spec": {"holderIdentity": "node-0", "leaseDurationSeconds": 15}}  # fmt: skip
    server.put("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", lease)
    found = inspected(server).extension_lease
    assert found is not None and found["spec"] == lease["spec"]
