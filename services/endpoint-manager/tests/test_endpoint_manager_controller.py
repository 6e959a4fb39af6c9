"""The controller carries decisions out: in order, once, and with no Fleet call at rest.

Fakes stand for the control cluster, the Fleet API (list + a watch that replays
what the cluster holds) and the health probe; time is a fake clock. Every call is
recorded, so the tests compare the sequence of effects with the one written here.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
from collections.abc import AsyncIterator
from typing import Any

import kr8s
import pytest
from endpoint_manager.controller import EndpointManager, watched_paths
from modelplane.cache import Cache
from modelplane.fleetclient import FleetError

Json = dict[str, Any]
T0 = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)
API = "/apis/modelplane.ai/v1alpha1"
REPLICA_PATH = f"{API}/namespaces/ml/modelreplicas/qwen-east-0"
ENDPOINT_PATH = f"{API}/namespaces/ml/modelendpoints/qwen-east-0"
STATUS_PATH = f"{REPLICA_PATH}/status"
RCT = "qwen-east-0-qwen-a83cb23d"
CLUSTER: Json = {
    "metadata": {"name": "east"},
    "status": {"gatewayAddress": "10.1.0.2", "conditions": [{"type": "Ready", "status": "True"}]},
}


def replica() -> Json:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelReplica",
        "metadata": {"name": "qwen-east-0", "namespace": "ml", "uid": "u-1", "generation": 1,
                     "creationTimestamp": "2026-11-29T11:00:00Z"},
        "spec": {
            "clusterName": "east", "deploymentName": "qwen", "index": 0,
            "serving": {"mode": "Unified"},
            "engines": [{"name": "qwen", "copies": 1, "nodePoolName": "l4", "nodeCost": 1,
                         "members": [{"role": "Standalone", "nodePoolName": "l4",
                                      "deviceRequests": [{"name": "gpu", "count": 1,
                                                          "deviceClassName": "gpu.nvidia.com"}],
                                      "template": {"spec": {"containers": [
                                          {"name": "engine", "image": "vllm"}]}}}]}],
        },
    }  # fmt: skip


class Kube:
    """The control cluster: one replica, its cluster, the endpoints written."""

    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls
        self.replica = replica()
        self.cluster = CLUSTER
        self.endpoints: list[Json] = []
        self.lists: list[str] = []
        self.deleted = False  # the replica is gone from the API server (the cache may lag)

    async def get(self, path: str, params: Any = None) -> Json | None:
        if path == REPLICA_PATH:
            self.calls.append(("get", path))
            return None if self.deleted else copy.deepcopy(self.replica)
        self.lists.append(path)
        items = {
            "modelreplicas": [self.replica], "inferenceclusters": [self.cluster],
            "modelendpoints": self.endpoints, "modeldeployments": [], "modelcaches": [],
        }[path.rsplit("/", 1)[1]]  # fmt: skip
        return {"items": copy.deepcopy(items)}

    async def own_finalizers(self, path: str, obj: Json, finalizers: list[str]) -> None:
        self.calls.append(("finalizers", path, *finalizers))
        if self.deleted:  # what the API server answers an apply that would create it
            raise kr8s.ServerError("ModelReplica.modelplane.ai is invalid: spec: Required value")
        self.replica["metadata"]["finalizers"] = finalizers

    async def merge_patch(self, path: str, body: Json) -> None:
        if "metadata" in body:  # the applied-on annotation, on the replica itself
            annotations = body["metadata"]["annotations"]
            self.calls.append(("annotate", path, *annotations.values()))
            self.replica["metadata"].setdefault("annotations", {}).update(annotations)
            return
        ready = {c["type"]: c["reason"] for c in body["status"]["conditions"]}["Ready"]
        self.calls.append(("status", path, ready))
        self.replica["status"] = body["status"]

    async def apply(self, path: str, body: Json) -> None:
        self.calls.append(("publish", path))
        self.endpoints = [body]

    async def delete(self, path: str) -> bool:
        self.calls.append(("withdraw", path))
        self.endpoints = []
        return True


class Fleet:
    """East: what was applied, with the Deployment's pods ready at once."""

    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls
        self.objects: dict[tuple[str, str], Json] = {}
        self.events: dict[str, asyncio.Queue[tuple[str, Json]]] = {}

    def queue(self, kind: str) -> asyncio.Queue[tuple[str, Json]]:
        return self.events.setdefault(kind, asyncio.Queue())

    async def apply(self, cluster: str, obj: Json) -> Json:
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
        live = copy.deepcopy(obj)
        live["metadata"]["generation"] = 1
        if obj["kind"] == "Deployment":
            live["status"] = {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1}
        if obj["kind"] != "Namespace":
            self.objects[(obj["kind"], obj["metadata"]["name"])] = live
            self.queue(obj["kind"]).put_nowait(("ADDED", live))
        return live

    async def delete(self, cluster: str, api_version: str, kind: str, ns: str, name: str) -> bool:
        self.calls.append(("delete", kind, name))
        gone = self.objects.pop((kind, name), None)
        if gone is not None:
            self.queue(kind).put_nowait(("DELETED", gone))
        return gone is not None

    async def list(
        self, cluster: str, api_version: str, kind: str, ns: str, sel: str
    ) -> list[Json]:
        strip = ("apiVersion", "kind")  # as Kubernetes lists them
        return [
            {f: v for f, v in o.items() if f not in strip}
            for (k, _), o in self.objects.items()
            if k == kind
        ]

    async def watch(self, cluster: str, api_version: str, kind: str, *args: Any) -> AsyncIterator[tuple[str, Json]]:  # fmt: skip
        while True:
            yield await self.queue(kind).get()


class Unprovisioned(Fleet):
    """A cluster never provisioned: the Fleet API has no kubeconfig for it, so every call
    fails before anything reaches it."""

    def _refuse(self) -> FleetError:
        why = "cluster east: source GKE is not provisioned yet, so it has no kubeconfig"
        return FleetError("FAILED_PRECONDITION", why)

    async def apply(self, cluster: str, obj: Json) -> Json:
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
        raise self._refuse()

    async def list(self, *args: Any) -> list[Json]:
        raise self._refuse()

    async def watch(self, *args: Any) -> AsyncIterator[tuple[str, Json]]:
        raise self._refuse()
        yield  # a generator, as the real one is


class Elector:
    is_leader = True


class Prober:
    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls

    async def probe(self, url: str) -> bool:
        self.calls.append(("probe", url))
        return True


async def watched(manager: EndpointManager) -> None:
    """The cache brought up to date with the control cluster, as its watches would."""
    for informer in manager.cache.informers.values():
        await informer.relist()


async def passes(manager: EndpointManager, clock: list[float], times: list[float]) -> None:
    for at in times:
        clock[0] = at
        await watched(manager)
        await manager.reconcile_all()
        for _ in range(50):
            await asyncio.sleep(0)


def setup(
    fleet_kind: type[Fleet] = Fleet,
) -> tuple[EndpointManager, Kube, Fleet, list[tuple[str, ...]], list[float]]:
    calls: list[tuple[str, ...]] = []
    kube, fleet, clock = Kube(calls), fleet_kind(calls), [0.0]
    cache = Cache(kube, watched_paths())  # type: ignore[arg-type]
    manager = EndpointManager(
        kube, fleet, Elector(), Prober(calls), cache,  # type: ignore[arg-type]
        clock=lambda: T0 + datetime.timedelta(seconds=clock[0]),
    )  # fmt: skip
    return manager, kube, fleet, calls, clock


SERVING = [
    ("finalizers", REPLICA_PATH, "modelplane.ai/endpoint-manager"),
    ("apply", "Namespace", "ml"),
    ("apply", "ResourceClaimTemplate", RCT),
    ("apply", "Deployment", "qwen-east-0-qwen"),
    ("apply", "Service", "qwen-east-0"),
    ("apply", "HTTPRoute", "qwen-east-0"),
    ("annotate", REPLICA_PATH, "east"),  # a restart still knows a teardown is owed there
    ("status", STATUS_PATH, "WorkloadNotReady"),  # the watch has not shown the Deployment yet
    ("probe", "http://10.1.0.2/ml/qwen-east-0/health"),
    ("publish", ENDPOINT_PATH),
    ("status", STATUS_PATH, "Serving"),
]


def test_a_new_replica_is_applied_probed_published_and_then_left_alone() -> None:
    async def scenario() -> None:
        manager, _, _, calls, clock = setup()
        await passes(manager, clock, [0, 2, 4])
        assert calls == SERVING
        calls.clear()
        await passes(manager, clock, [2.0 * i for i in range(3, 30)])  # a minute at rest
        assert [c for c in calls if c[0] != "probe"] == [], "no Fleet call, no write at rest"
        assert 4 <= len(calls) <= 8, "a probe every 7.5-12.5 s over 54 s"
        await manager.remote.close()

    asyncio.run(scenario())


def test_deletion_withdraws_then_drains_then_tears_down_route_first_then_releases() -> None:
    async def scenario() -> None:
        manager, kube, _, calls, clock = setup()
        await passes(manager, clock, [0, 2])
        calls.clear()
        kube.replica["metadata"]["deletionTimestamp"] = "2026-11-29T12:00:03Z"
        await passes(manager, clock, [3, 4, 7, 8.5, 9, 9.5, 10])  # it lingers after the release
        assert calls == [
            ("withdraw", ENDPOINT_PATH),
            ("status", STATUS_PATH, "Deleting"),  # withdrawing
            ("status", STATUS_PATH, "Deleting"),  # draining
            ("status", STATUS_PATH, "Deleting"),  # tearing down
            ("delete", "HTTPRoute", "qwen-east-0"),
            ("delete", "Service", "qwen-east-0"),
            ("delete", "Deployment", "qwen-east-0-qwen"),
            ("delete", "ResourceClaimTemplate", RCT),
            ("finalizers", REPLICA_PATH),
        ]
        await manager.remote.close()

    asyncio.run(scenario())


def test_a_replica_on_a_cluster_never_provisioned_is_released_at_once_when_deleted() -> None:
    async def scenario() -> None:
        manager, kube, _, calls, clock = setup(Unprovisioned)
        kube.cluster = {
            "metadata": {"name": "east"},
            "status": {"conditions": [{"type": "Ready", "status": "False",
                                       "reason": "NotProvisioned"}]},
        }  # fmt: skip
        await passes(manager, clock, [0, 2])
        assert calls == [
            ("finalizers", REPLICA_PATH, "modelplane.ai/endpoint-manager"),
            ("apply", "Namespace", "ml"),
            ("status", STATUS_PATH, "WorkloadNotReady"),  # Synced: ApplyFailed
            ("apply", "Namespace", "ml"),  # tried again after 2 s
        ]
        assert "annotations" not in kube.replica["metadata"], "nothing reached east"
        calls.clear()
        kube.replica["metadata"]["deletionTimestamp"] = "2026-11-29T12:00:03Z"
        await passes(manager, clock, [3, 3.5])
        assert calls == [
            ("status", STATUS_PATH, "Deleting"),
            ("finalizers", REPLICA_PATH),  # no drain, no teardown: nothing is there
        ]
        await manager.remote.close()

    asyncio.run(scenario())


def test_a_replica_deleted_just_before_its_finalizer_gets_nothing_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        manager, kube, _, calls, clock = setup()
        await watched(manager)  # the cache still holds the replica...
        kube.deleted = True  # ...that was just deleted, before any finalizer was on it
        clock[0] = 0
        assert await manager.reconcile_all() is None, "no failure, nothing expected soon"
        assert calls == [
            ("finalizers", REPLICA_PATH, "modelplane.ai/endpoint-manager"),  # refused
            ("get", REPLICA_PATH),  # gone: nothing applied, no status written
        ]
        await manager.remote.close()

    with caplog.at_level(logging.WARNING, logger="endpoint_manager"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [], "a deleted replica is no failure"


def test_an_object_deleted_on_the_cluster_is_applied_again() -> None:
    async def scenario() -> None:
        manager, _, fleet, calls, clock = setup()
        await passes(manager, clock, [0, 2])
        calls.clear()
        await fleet.delete("east", "gateway.networking.k8s.io/v1", "HTTPRoute", "ml", "qwen-east-0")
        await passes(manager, clock, [8, 9])  # the event arrives after the pass at 8
        assert [c for c in calls if c[0] == "apply"] == [c for c in SERVING if c[0] == "apply"]
        await manager.remote.close()

    asyncio.run(scenario())


def test_a_pass_reads_the_control_cluster_from_the_cache_without_a_request() -> None:
    async def scenario() -> None:
        manager, kube, _, calls, clock = setup()
        await watched(manager)
        assert sorted(kube.lists) == sorted(
            f"{API}/{plural}"
            for plural in (
                "modelreplicas",
                "modeldeployments",
                "inferenceclusters",
                "modelendpoints",
                "modelcaches",
            )
        )
        kube.lists.clear()
        for at in (0, 2, 4, 6):
            clock[0] = at
            await manager.reconcile_all()
            for _ in range(50):
                await asyncio.sleep(0)
        assert kube.lists == [], "no list of the control cluster per pass"
        assert calls[:1] == SERVING[:1], "the replica read from the cache is handled"
        await manager.remote.close()

    asyncio.run(scenario())
