"""A pod's status as kubelet reports it, computed from its containers' records (pure).

`ContainerRecord` is what the agent knows about one container (state, exit code,
restarts, readiness); `pod_status` turns the records into the `status` of the
pod: phase, the PodScheduled/Initialized/PodReadyToStartContainers/
ContainersReady/Ready conditions, container statuses, pod and host IPs and start
time. Phase follows kubelet: Pending while a container has never started,
Succeeded or Failed once every container terminated and the restart policy
will not restart it, Running otherwise.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from modelplane_localfleet.nodeagent.objects import timestamp

State = Literal["waiting", "running", "terminated"]


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    name: str
    image: str
    state: State = "waiting"
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    pid: int | None = None
    last_terminated: ContainerRecord | None = None
    image_id: str = ""  # `<repo>@sha256:...` once pulled from a registry

    def waiting(self, reason: str, message: str = "") -> ContainerRecord:
        return replace(self, state="waiting", reason=reason, message=message, ready=False)

    def running(self, now: datetime.datetime, pid: int | None) -> ContainerRecord:
        return replace(
            self, state="running", reason="", message="", started_at=now, finished_at=None,
            exit_code=None, pid=pid, ready=False, started=True,
        )  # fmt: skip

    def terminated(self, now: datetime.datetime, exit_code: int, reason: str) -> ContainerRecord:
        return replace(
            self, state="terminated", reason=reason, finished_at=now, exit_code=exit_code,
            ready=False, started=False, pid=None,
        )  # fmt: skip

    def restarted(self) -> ContainerRecord:
        """Ready for its next start: the finished run becomes `lastState`."""
        return replace(
            self,
            last_terminated=replace(self, last_terminated=None),
            restart_count=self.restart_count + 1,
        )


def will_restart(policy: str, record: ContainerRecord) -> bool:
    if record.state != "terminated":
        return False
    if policy == "Always":
        return True
    return policy == "OnFailure" and record.exit_code != 0


def phase(policy: str, records: Sequence[ContainerRecord]) -> str:
    if any(r.state == "waiting" and r.restart_count == 0 and not r.started_at for r in records):
        return "Pending"
    if records and all(r.state == "terminated" and not will_restart(policy, r) for r in records):
        return "Succeeded" if all(r.exit_code == 0 for r in records) else "Failed"
    return "Running"


def _state(record: ContainerRecord) -> dict[str, Any]:
    if record.state == "running":
        return {"running": {"startedAt": _time(record.started_at)}}
    if record.state == "terminated":
        return {
            "terminated": {
                "exitCode": record.exit_code if record.exit_code is not None else 0,
                "reason": record.reason or "Completed",
                "message": record.message or None,
                "startedAt": _time(record.started_at),
                "finishedAt": _time(record.finished_at),
                "containerID": _container_id(record),
            }
        }
    waiting = {"reason": record.reason}
    if record.message:
        waiting["message"] = record.message
    return {"waiting": waiting}


def _time(value: datetime.datetime | None) -> str | None:
    return timestamp(value) if value else None


def _container_id(record: ContainerRecord) -> str | None:
    return f"localfleet://{record.pid}" if record.pid else None


def container_status(record: ContainerRecord) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": record.name,
        "image": record.image,
        "imageID": record.image_id or f"localfleet://{record.image}",
        "ready": record.ready,
        "started": record.state == "running",
        "restartCount": record.restart_count,
        "state": _state(record),
        "lastState": _state(record.last_terminated) if record.last_terminated else {},
    }
    if record.pid:
        status["containerID"] = _container_id(record)
    return status


def pod_status(
    pod: Mapping[str, Any],
    records: Sequence[ContainerRecord],
    *,
    pod_ip: str,
    host_ip: str,
    start_time: datetime.datetime,
    now: datetime.datetime,
) -> dict[str, Any]:
    """The pod's whole status; a condition's lastTransitionTime moves only when it changes."""
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    current = phase(policy, records)
    all_ready = bool(records) and all(r.ready for r in records) and current == "Running"
    wanted = {
        "PodReadyToStartContainers": True,
        "Initialized": True,
        "ContainersReady": all_ready,
        "Ready": all_ready,
        "PodScheduled": True,
    }
    old_conditions = {c["type"]: c for c in ((pod.get("status") or {}).get("conditions") or [])}
    conditions = []
    for kind, value in wanted.items():
        text = "True" if value else "False"
        old = old_conditions.get(kind)
        moved = old is None or old.get("status") != text
        condition: dict[str, Any] = {
            "type": kind,
            "status": text,
            "lastProbeTime": None,
            "lastTransitionTime": timestamp(now)
            if moved
            else (old or {}).get("lastTransitionTime"),
        }
        if not value and kind in ("ContainersReady", "Ready"):
            waiting = [r.name for r in records if not r.ready]
            condition["reason"] = "ContainersNotReady"
            condition["message"] = f"containers with unready status: [{' '.join(waiting)}]"
        conditions.append(condition)
    return {
        "phase": current,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": timestamp(start_time),
        "containerStatuses": [container_status(r) for r in records],
        "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
    }
