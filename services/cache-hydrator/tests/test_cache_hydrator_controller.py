"""The controller carries decisions out: the token read by name (never listed, never
logged), the objects applied on the footprint cluster only and once, the status written.

Fakes stand for the control cluster and the Fleet API; every call is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import logging
from typing import Any

import pytest
from cache_hydrator.controller import CacheHydrator, watched_paths
from cache_hydrator.render import JobConfig
from modelplane.cache import Cache

Json = dict[str, Any]
T0 = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.UTC)
API = "/apis/modelplane.ai/v1alpha1"
SECRET_PATH = "/api/v1/namespaces/ml/secrets/hf-token"
TOKEN = "hf_do_not_log_me"


def cluster(name: str, region: str) -> Json:
    return {
        "metadata": {"name": name, "labels": {"modelplane.ai/region": region}},
        "spec": {"cluster": {"source": "Existing", "existing": {
            "secretRef": {"name": "k", "key": "k"}, "cache": {"storageClassName": "rwx"}}}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip


class Kube:
    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls
        self.cache: Json = {
            "metadata": {"name": "qwen", "namespace": "ml", "uid": "c-1", "generation": 1},
            "spec": {"source": "HuggingFace", "clusterSelector": {"matchLabels": {
                "modelplane.ai/region": "us-east"}}, "huggingFace": {
                "repo": "Qwen/Qwen3-0.6B", "sizeGiB": 1, "authSecret": {"name": "hf-token"}}},
        }  # fmt: skip

    async def get(self, path: str, params: Any = None) -> Json:
        if path == SECRET_PATH:
            self.calls.append(("get", path))
            value = base64.b64encode(TOKEN.encode()).decode()
            return {"data": {"HF_TOKEN": value, "OTHER": value}}
        assert "secrets" not in path, f"secrets listed: {path}"
        items = {
            "modelcaches": [self.cache],
            "inferenceclusters": [cluster("east", "us-east"), cluster("west", "us-west")],
            "modelreplicas": [],
        }[path.rsplit("/", 1)[1]]
        return {"items": copy.deepcopy(items)}

    async def own_finalizers(self, path: str, obj: Json, finalizers: list[str]) -> None:
        self.calls.append(("finalizers", path, *finalizers))
        self.cache["metadata"]["finalizers"] = finalizers

    async def merge_patch(self, path: str, body: Json) -> None:
        self.calls.append(("status", path, body["status"]["readyClusters"]))
        self.cache["status"] = body["status"]


class Fleet:
    def __init__(self, calls: list[tuple[str, ...]]) -> None:
        self.calls = calls
        self.objects: dict[tuple[str, str, str], Json] = {}

    async def apply(self, cluster: str, obj: Json) -> Json:
        self.calls.append(("apply", cluster, obj["kind"]))
        self.objects[(cluster, obj["kind"], obj["metadata"]["name"])] = obj
        return obj

    async def list(
        self, cluster: str, api_version: str, kind: str, ns: str, sel: str
    ) -> list[Json]:
        assert kind != "Secret", "secrets listed on a cluster"
        return [
            copy.deepcopy(o) for (c, k, _), o in self.objects.items() if (c, k) == (cluster, kind)
        ]

    async def delete(self, cluster: str, *ref: str) -> bool:
        self.calls.append(("delete", cluster, *ref))
        return True


class Elector:
    is_leader = True


def test_one_cache_is_staged_on_its_footprint_once_with_only_the_named_key_copied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[str, ...]] = []
    kube, fleet = Kube(calls), Fleet(calls)
    cache = Cache(kube, watched_paths())  # type: ignore[arg-type]
    hydrator = CacheHydrator(
        kube, fleet, Elector(), cache, JobConfig("img", "http://hub"),  # type: ignore[arg-type]
        clock=lambda: T0,
    )  # fmt: skip

    async def passes(n: int) -> None:
        for _ in range(n):
            for informer in cache.informers.values():
                await informer.relist()
            await hydrator.reconcile_all()

    caplog.set_level(logging.DEBUG)
    asyncio.run(passes(3))
    path = f"{API}/namespaces/ml/modelcaches/qwen"
    kinds = ["Namespace", "PersistentVolumeClaim", "Secret", "ConfigMap", "ServiceAccount",
             "Role", "RoleBinding", "Job"]  # fmt: skip
    assert calls == [
        ("get", SECRET_PATH),
        ("finalizers", path, "modelplane.ai/cache-hydrator"),
        *(("apply", "east", kind) for kind in kinds),
        ("status", f"{path}/status", "0/1"),
        ("get", SECRET_PATH),  # at rest: nothing applied or written again
        ("get", SECRET_PATH),
    ]
    secret = fleet.objects[("east", "Secret", "modelcache-qwen-token")]
    assert list(secret["data"]) == ["HF_TOKEN"]
    assert TOKEN not in caplog.text
    assert base64.b64encode(TOKEN.encode()).decode() not in caplog.text
