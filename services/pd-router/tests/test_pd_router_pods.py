"""The pod sets follow the engines' EndpointSlices: listed, then watched (against FakeKube,
the tests' in-memory list/watch fake; a real apiserver is the local fleet's to provide)."""

from __future__ import annotations

import asyncio
from typing import Any

from pd_router.app import follow_slices, readiness
from pd_router.phase import Phase
from pd_router.pods import SERVICE_LABEL, Pod, slices_path

from tests.fakekube import FakeKube, settle

NS = "team"
COLLECTION = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"


def _slice(name: str, service: str, ips: dict[str, bool]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": {SERVICE_LABEL: service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready},
             "targetRef": {"kind": "Pod", "name": f"{service}-{ip.rsplit('.', 1)[1]}"}}
            for ip, ready in ips.items()
        ],
    }  # fmt: skip


def test_the_slices_path_selects_one_service() -> None:
    assert slices_path(NS, "r-decode") == (
        f"{COLLECTION}?labelSelector=kubernetes.io/service-name=r-decode"
    )


def test_pods_follow_the_slices_of_each_phase() -> None:
    async def scenario() -> None:
        kube = FakeKube("EndpointSlice", "discovery.k8s.io/v1")
        kube.put(COLLECTION, _slice("p-1", "r-prefill", {"10.1.0.1": True, "10.1.0.2": False}))
        kube.put(COLLECTION, _slice("other", "someone-else", {"10.9.0.1": True}))
        prefill, decode = Phase("prefill", 1.0), Phase("decode", 1.0)
        draining = asyncio.Event()
        cache = follow_slices(kube, NS, "http", {"r-prefill": prefill, "r-decode": decode})
        task = asyncio.create_task(cache.run())
        try:
            await settle()
            assert list(prefill.pods.values()) == [Pod("10.1.0.1", 8000, "r-prefill-1")]
            assert decode.addresses == ()
            assert readiness(decode, draining) == "no ready decode pod known yet"

            kube.put(COLLECTION, _slice("d-1", "r-decode", {"10.2.0.1": True}))
            kube.put(COLLECTION, _slice("d-2", "r-decode", {"10.2.0.2": True}))
            kube.put(COLLECTION, _slice("p-1", "r-prefill", {"10.1.0.1": True, "10.1.0.2": True}))
            await settle()
            assert decode.addresses == ("10.2.0.1:8000", "10.2.0.2:8000")
            assert prefill.addresses == ("10.1.0.1:8000", "10.1.0.2:8000")
            assert readiness(decode, draining) is None
            draining.set()
            assert readiness(decode, draining) == "draining: shutting down"

            kube.put(COLLECTION, _slice("p-1", "r-prefill", {"10.1.0.1": False, "10.1.0.2": True}))
            kube.remove(COLLECTION, NS, "d-2")
            await settle()
            assert prefill.addresses == ("10.1.0.2:8000",)
            assert decode.addresses == ("10.2.0.1:8000",)
        finally:
            task.cancel()

    asyncio.run(scenario())
