"""Which InferenceClusters a change queues for a reconcile, read from a filled cache."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import pytest
from cluster_provisioner.controller import CLASSES, CLUSTERS, REPLICAS, Provisioner
from cluster_provisioner.observe import secrets_path
from modelplane.cache import Cache, Lister
from modelplane.kube import Kube
from modelplane.leader import LeaderElector

NAMESPACE = "modelplane-system"
SECRETS = secrets_path(NAMESPACE)
Json = dict[str, Any]


def cluster(name: str, classes: tuple[str, ...] = ("l4",), secret: str = "") -> Json:
    source: Json = {"source": "Existing", "existing": {"secretRef": {"name": secret}}}
    return {
        "metadata": {"name": name},
        "spec": {
            "cluster": source if secret else {"source": "GKE"},
            "nodePools": [{"name": c, "className": c, "nodeCount": 1} for c in classes],
        },
    }


def named(name: str, namespace: str = "", **spec: str) -> Json:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "spec": spec}


class Elector:
    def __init__(self, leader: bool) -> None:
        self.is_leader = leader


def provisioner(leader: bool = True) -> Provisioner:
    """A provisioner whose cache already holds three clusters (no API server needed)."""
    cache = Cache(cast(Lister, None), [CLUSTERS, CLASSES, REPLICAS, SECRETS])
    clusters = [
        cluster("east", ("l4", "h100"), secret="east-kubeconfig"),
        cluster("west", ("l4",), secret="shared-kubeconfig"),
        cluster("gke", ("h100",)),
    ]
    cache.informers[CLUSTERS].objects = {c["metadata"]["name"]: c for c in clusters}
    elector = cast(LeaderElector, Elector(leader))
    return Provisioner(cast(Kube, None), NAMESPACE, elector, cache)


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    obj: Json
    keys: list[str]


CASES = [
    Case("a cluster queues itself", CLUSTERS, named("north"), ["north"]),
    Case("a class queues every cluster with a pool of it", CLASSES, named("h100"), ["east", "gke"]),
    Case("a class no pool uses queues nothing", CLASSES, named("a100"), []),
    Case("a replica queues the cluster it is on", REPLICAS,
         named("r-0", "ml", clusterName="west"), ["west"]),
    Case("a replica not placed yet queues nothing", REPLICAS, named("r-1", "ml"), []),
    Case("a Secret queues the clusters whose kubeconfig it holds", SECRETS,
         named("shared-kubeconfig", NAMESPACE), ["west"]),
    Case("any other Secret queues nothing", SECRETS, named("tls", NAMESPACE), []),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_keys(case: Case) -> None:
    assert list(provisioner().keys(case.path, case.obj)) == case.keys


@pytest.mark.parametrize(
    ("name", "leader"),
    [("a cluster no longer cached", True), ("any cluster on a copy that is not the leader", False)],
)
def test_nothing_is_done_or_requeued_for(name: str, leader: bool) -> None:
    target = "gone" if leader else "east"
    assert asyncio.run(provisioner(leader).reconcile_key(target)) is None
