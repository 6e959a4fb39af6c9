"""RemoteCache: endpoint-manager's per-cluster watch caches, against a scripted Fleet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from endpoint_manager import remote
from endpoint_manager.remote import RemoteCache
from modelplane.fleetclient import FleetError

Json = dict[str, Any]
MANAGED = {"app.kubernetes.io/managed-by": "modelplane-endpoint-manager"}


API_VERSIONS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "HTTPRoute": "gateway.networking.k8s.io/v1",
}


def obj(kind: str, name: str, replica: str = "qwen-east-0", namespace: str = "ml") -> Json:
    labels = {**MANAGED, "modelplane.ai/replica": replica}
    return {
        "apiVersion": API_VERSIONS[kind],
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "managedFields": [{"manager": "x"}]},
    }  # fmt: skip


def kept(kind: str, name: str, replica: str = "qwen-east-0") -> Json:
    """`obj` as the cache keeps it: without managedFields."""
    out = obj(kind, name, replica)
    del out["metadata"]["managedFields"]
    return out


class Fleet:
    """Lists what `objects` holds; each watch serves the events put on its kind's queue.
    `fail_lists` makes lists of those kinds fail with the given code."""

    def __init__(self, objects: list[Json]) -> None:
        self.objects = objects
        self.streams: dict[str, asyncio.Queue[tuple[str, Json] | FleetError | None]] = {}
        self.fail_lists: dict[str, str] = {}
        self.lists: list[tuple[str, str]] = []
        self.selectors: set[str] = set()

    async def list(
        self, cluster: str, api_version: str, kind: str, namespace: str, selector: str = ""
    ) -> list[Json]:
        self.lists.append((cluster, kind))
        self.selectors.add(selector)
        if kind in self.fail_lists:
            code = self.fail_lists[kind]
            raise FleetError(code, f"cluster {cluster}: {kind} says {code}")
        # as Kubernetes lists them: the items carry no apiVersion and no kind
        return [
            {k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
            for o in self.objects
            if o["kind"] == kind
        ]

    async def watch(
        self, cluster: str, api_version: str, kind: str, namespace: str = "",
        label_selector: str = "", renew_s: float = 300.0,
    ) -> AsyncIterator[tuple[str, Json]]:  # fmt: skip
        queue = self.streams.setdefault(kind, asyncio.Queue())
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, FleetError):
                raise item
            yield item


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "MIN_BACKOFF_S", 0.0)
    monkeypatch.setattr(remote, "MAX_BACKOFF_S", 0.0)


def test_a_cluster_is_listed_then_followed_event_by_event() -> None:
    async def scenario() -> None:
        fleet = Fleet([obj("Deployment", "qwen-east-0-qwen"), obj("Service", "qwen-east-0"),
                       obj("Service", "other", replica="other-0")])  # fmt: skip
        changes: list[int] = []
        cache = RemoteCache(fleet, lambda: changes.append(1))  # type: ignore[arg-type]
        assert cache.owned("east", "ml", "qwen-east-0") is None, "nothing known before tracking"
        cache.track({"east": "True 10.1.0.2"})
        await settle()
        assert cache.owned("east", "ml", "qwen-east-0") == (
            kept("Deployment", "qwen-east-0-qwen"),
            kept("Service", "qwen-east-0"),
        )
        assert fleet.selectors == {"app.kubernetes.io/managed-by=modelplane-endpoint-manager"}
        fleet.streams["HTTPRoute"].put_nowait(("ADDED", obj("HTTPRoute", "qwen-east-0")))
        fleet.streams["Service"].put_nowait(("DELETED", obj("Service", "qwen-east-0")))
        await settle()
        assert cache.owned("east", "ml", "qwen-east-0") == (
            kept("Deployment", "qwen-east-0-qwen"),
            kept("HTTPRoute", "qwen-east-0"),
        )
        assert cache.owned("east", "ml", "other-0") == (kept("Service", "other", "other-0"),)
        assert cache.owned("east", "other-namespace", "qwen-east-0") == ()
        assert changes, "every change is reported"
        await cache.close()

    asyncio.run(scenario())


def test_a_kind_the_cluster_does_not_serve_counts_as_empty() -> None:
    async def scenario() -> None:
        fleet = Fleet([obj("Deployment", "qwen-east-0-qwen")])
        fleet.fail_lists["LeaderWorkerSet"] = "NOT_FOUND"
        cache = RemoteCache(fleet)  # type: ignore[arg-type]
        cache.track({"east": "True"})
        await settle()
        assert cache.owned("east", "ml", "qwen-east-0") == (kept("Deployment", "qwen-east-0-qwen"),)
        await cache.close()

    asyncio.run(scenario())


def test_a_broken_stream_is_relisted_and_a_failed_relist_means_unknown() -> None:
    async def scenario() -> None:
        fleet = Fleet([obj("Deployment", "qwen-east-0-qwen")])
        cache = RemoteCache(fleet)  # type: ignore[arg-type]
        cache.track({"east": "True"})
        await settle()
        fleet.objects = []  # deleted while the stream was down: no event will say so
        fleet.streams["Deployment"].put_nowait(FleetError("UNAVAILABLE", "cluster east: gone"))
        await settle()
        assert cache.owned("east", "ml", "qwen-east-0") == (), "the relist replaced the view"

        fleet.fail_lists["Deployment"] = "UNAVAILABLE"
        fleet.streams["Deployment"].put_nowait(FleetError("UNAVAILABLE", "cluster east: gone"))
        await settle()
        assert cache.owned("east", "ml", "qwen-east-0") is None, "unknown while it cannot list"

        del fleet.fail_lists["Deployment"]
        fleet.objects = [obj("Deployment", "qwen-east-0-qwen")]
        cache.track({"east": "True 10.1.0.9"})  # the cluster came back
        await settle()
        assert cache.owned("east", "ml", "qwen-east-0") == (kept("Deployment", "qwen-east-0-qwen"),)
        await cache.close()

    asyncio.run(scenario())


def test_a_renewed_stream_lists_again_and_keeps_the_view_meanwhile() -> None:
    async def scenario() -> None:
        fleet = Fleet([obj("Deployment", "qwen-east-0-qwen")])
        cache = RemoteCache(fleet)  # type: ignore[arg-type]
        cache.track({"east": "True"})
        await settle()
        before = fleet.lists.count(("east", "Deployment"))
        fleet.streams["Deployment"].put_nowait(None)  # the stream ended (renewal)
        await settle()
        assert fleet.lists.count(("east", "Deployment")) == before + 1
        assert cache.owned("east", "ml", "qwen-east-0") == (kept("Deployment", "qwen-east-0-qwen"),)
        await cache.close()

    asyncio.run(scenario())


def test_forgotten_objects_and_untracked_clusters_are_dropped() -> None:
    async def scenario() -> None:
        fleet = Fleet([obj("Deployment", "qwen-east-0-qwen"), obj("Service", "qwen-east-0")])
        cache = RemoteCache(fleet)  # type: ignore[arg-type]
        cache.track({"east": "True"})
        await settle()
        cache.forget("east", "Service", "ml", "qwen-east-0")
        assert cache.owned("east", "ml", "qwen-east-0") == (kept("Deployment", "qwen-east-0-qwen"),)
        cache.track({})
        assert cache.owned("east", "ml", "qwen-east-0") is None
        await cache.close()

    asyncio.run(scenario())
