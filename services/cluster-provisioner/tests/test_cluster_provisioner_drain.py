"""Holding a deleted InferenceCluster until its replicas drain: the finalizer decision."""

from __future__ import annotations

import datetime
from typing import Any

from cluster_provisioner.drain import (
    FINALIZER,
    HOLD_LIMIT_S,
    Action,
    draining_message,
    finalizer_action,
    replicas_by_cluster,
)
from cluster_provisioner.status import DELETING, Credentials, Inspection, decide

NOW = datetime.datetime(2026, 11, 29, 10, 0, 0, tzinfo=datetime.UTC)


def cluster(*, deleted_s_ago: float | None = None, held: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "us-west", "generation": 1}
    if held:
        meta["finalizers"] = ["other.example/keep", FINALIZER]
    if deleted_s_ago is not None:
        stamp = NOW - datetime.timedelta(seconds=deleted_s_ago)
        meta["deletionTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": meta,
        "spec": {
            "cluster": {"source": "Existing", "existing": {"secretRef": {"name": "kc"}}},
            "nodePools": [],
        },
    }


def test_a_live_cluster_gets_the_finalizer_once() -> None:
    assert finalizer_action(cluster(held=False), 0, True, NOW) is Action.ADD
    assert finalizer_action(cluster(), 3, True, NOW) is Action.KEEP


def test_a_deleted_cluster_is_held_while_replicas_drain_then_released() -> None:
    assert finalizer_action(cluster(deleted_s_ago=2), 2, True, NOW) is Action.KEEP
    assert finalizer_action(cluster(deleted_s_ago=2), 0, True, NOW) is Action.RELEASE


def test_an_unreachable_or_long_held_cluster_is_released_with_replicas_left() -> None:
    assert finalizer_action(cluster(deleted_s_ago=2), 2, False, NOW) is Action.RELEASE
    assert finalizer_action(cluster(deleted_s_ago=HOLD_LIMIT_S), 2, True, NOW) is Action.RELEASE


def test_a_deleted_cluster_without_our_finalizer_is_left_alone() -> None:
    assert finalizer_action(cluster(deleted_s_ago=1, held=False), 0, True, NOW) is Action.KEEP


def test_replicas_are_counted_per_cluster_terminating_ones_included() -> None:
    replicas = [
        {"metadata": {"name": "a"}, "spec": {"clusterName": "us-west"}},
        {"metadata": {"name": "b", "deletionTimestamp": "x"}, "spec": {"clusterName": "us-west"}},
        {"metadata": {"name": "c"}, "spec": {"clusterName": "us-east"}},
        {"metadata": {"name": "d"}},
    ]
    assert replicas_by_cluster(replicas) == {"us-west": 2, "us-east": 1}


def test_the_status_of_a_draining_cluster_says_what_it_waits_for() -> None:
    inspection = Inspection(gateway_address="10.240.0.3", ready_nodes={})
    deleted = cluster(deleted_s_ago=1)
    status = decide(
        deleted, {}, Credentials(kubeconfig="x"), inspection, "2026-11-29T10:00:00Z",
        draining_message(deleted, 2),
    )  # fmt: skip
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", DELETING)
    assert (
        "InferenceCluster/us-west is being deleted; waiting for 2 ModelReplica(s)"
        in (ready["message"])
    )
    assert status["gatewayAddress"] == "10.240.0.3", "the drain still needs the gateway"
