"""Pod status from container records: phase per restart policy, readiness conditions."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from modelplane_localfleet.nodeagent.podstatus import ContainerRecord, phase, pod_status

T0 = datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(seconds=5)
NEW = ContainerRecord("engine", "vllm/vllm-openai:v0.23.0")
RUNNING = NEW.running(T0, 4242)
OK = RUNNING.terminated(T1, 0, "Completed")
FAILED = RUNNING.terminated(T1, 1, "Error")


@pytest.mark.parametrize(
    ("name", "policy", "records", "expected"),
    [
        (
            "a container that never started keeps the pod Pending",
            "Always",
            [NEW, RUNNING],
            "Pending",
        ),
        ("running containers make it Running", "Always", [RUNNING], "Running"),
        ("a failed container that will restart keeps it Running", "Always", [FAILED], "Running"),
        ("OnFailure restarts failures but not successes", "OnFailure", [OK], "Succeeded"),
        ("Never: all succeeded", "Never", [OK, OK], "Succeeded"),
        ("Never: one failed", "Never", [OK, FAILED], "Failed"),
        (
            "a restarting container waiting in back-off is Running",
            "Always",
            [FAILED.restarted().waiting("CrashLoopBackOff")],
            "Running",
        ),
    ],
)
def test_phase(name: str, policy: str, records: list[ContainerRecord], expected: str) -> None:
    assert phase(policy, records) == expected


def _pod(conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"spec": {"restartPolicy": "Always"}, "status": {"conditions": conditions or []}}


def test_a_ready_pod_reports_every_condition_true_with_its_ips() -> None:
    status = pod_status(
        _pod(), [_ready()],
        pod_ip="10.244.16.2", host_ip="10.244.16.1", start_time=T0, now=T1,
    )  # fmt: skip
    assert status["phase"] == "Running"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
        "PodScheduled": "True",
    }
    assert (status["podIP"], status["podIPs"], status["hostIP"]) == (
        "10.244.16.2", [{"ip": "10.244.16.2"}], "10.244.16.1",
    )  # fmt: skip
    assert status["containerStatuses"] == [
        {
            "name": "engine",
            "image": "vllm/vllm-openai:v0.23.0",
            "imageID": "localfleet://vllm/vllm-openai:v0.23.0",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": "2026-11-29T03:00:00Z"}},
            "lastState": {},
            "containerID": "localfleet://4242",
        }
    ]


def _ready() -> ContainerRecord:
    from dataclasses import replace

    return replace(RUNNING, ready=True)


def test_unready_containers_are_named_and_transition_times_move_only_on_change() -> None:
    earlier = [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-29T02:00:00Z"}]
    status = pod_status(
        _pod(earlier), [RUNNING], pod_ip="10.244.16.2", host_ip="10.244.16.1",
        start_time=T0, now=T1,
    )  # fmt: skip
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready == {
        "type": "Ready",
        "status": "False",
        "lastProbeTime": None,
        "lastTransitionTime": "2026-11-29T02:00:00Z",
        "reason": "ContainersNotReady",
        "message": "containers with unready status: [engine]",
    }


def test_a_restart_keeps_the_last_run_as_last_state() -> None:
    again = FAILED.restarted().running(T1, 4343)
    assert (again.restart_count, again.last_terminated) == (1, FAILED)
    status = pod_status(_pod(), [again], pod_ip="a", host_ip="b", start_time=T0, now=T1)
    assert status["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
