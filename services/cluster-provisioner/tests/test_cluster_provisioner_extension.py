"""The scheduler extension's health in InferenceCluster status, from the extender's Lease:
Healthy (Device accounting) while renewed, Unhealthy (Node) once lapsed or released,
Absent (Node) without a Lease. (Its place in the whole status: the status tests; the
Lease watched on the cluster: the remote tests.)"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cluster_provisioner.extension import judge

NOW = datetime.datetime(2026, 12, 3, 18, 0, 0, tzinfo=datetime.UTC)


def extender_lease(
    holder: str = "node-0-1234", renewed_ago_s: float = 3.0, duration: int = 15
) -> Any:
    renewed = NOW - datetime.timedelta(seconds=renewed_ago_s)
    return {
        "metadata": {"name": "modelplane-scheduler-extender", "namespace": "kube-system"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "acquireTime": "2026-12-03T17:00:00.000000Z",
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


@pytest.mark.parametrize(
    ("found", "health", "accounting", "due"),
    [
        (extender_lease(renewed_ago_s=3.0), "Healthy", "Device", 12.1),
        (extender_lease(renewed_ago_s=15.5), "Unhealthy", "Node", None),
        (extender_lease(holder=""), "Unhealthy", "Node", None),
        (None, "Absent", "Node", None),
    ],
    ids=["renewed 3 s ago", "lapsed", "released", "no lease"],
)
def test_the_lease_decides_health_accounting_and_when_to_look_again(
    found: Any, health: str, accounting: str, due: float | None
) -> None:
    status, left = judge(found, NOW)
    assert (status["health"], status["accounting"]) == (health, accounting)
    assert "kube-system/modelplane-scheduler-extender" in status["message"]
    assert left == (None if due is None else pytest.approx(due))


def test_the_message_does_not_change_with_each_renewal() -> None:
    """So a renewal (every 7.5 s) writes no status."""
    assert (
        judge(extender_lease(renewed_ago_s=1), NOW)[0]
        == judge(extender_lease(renewed_ago_s=9), NOW)[0]
    )
