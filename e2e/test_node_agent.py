"""Kubelet's duties, as the node agent performs them for pods on its nodes.

The engine simulator's process is checked directly: its pid is in the
container's `containerID` (`localfleet://PID`), so its environment and mounts
can be read from /proc, and its end observed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from modelplane_localfleet.cluster import Cluster

from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.simulator import engine_container

pytestmark = pytest.mark.usefixtures("local_fleet")


def pod(name: str, namespace: str, container: Json, **spec: object) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [container], **spec},
    }


def container_status(east: Cluster, namespace: str, name: str) -> Json:
    found = get(east, "pod", "-n", namespace, name)
    statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def running_pid(east: Cluster, namespace: str, name: str) -> int:
    def pid() -> int | None:
        status = container_status(east, namespace, name)
        container_id = status.get("containerID", "")
        if "running" in status.get("state", {}) and container_id.startswith("localfleet://"):
            return int(container_id.removeprefix("localfleet://"))
        return None

    return wait_for(f"pod {name}'s process", pid)


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in raw if b"=" in entry)


def test_env_is_resolved_from_fields_secrets_and_config_maps(
    east: Cluster, east_namespace: str
) -> None:
    engine = engine_container()
    engine["env"] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "URL", "value": "http://$(POD_IP):8000"},
    ]
    apply(east, pod("env", east_namespace, engine))
    status = wait_for(
        "CreateContainerConfigError for the missing Secret",
        lambda: (s := container_status(east, east_namespace, "env").get("state", {}).get("waiting"))
        and s.get("reason") == "CreateContainerConfigError"
        and s,
    )
    assert "env[2] (TOKEN).valueFrom.secretKeyRef: secret 'hf' not found" in status["message"]
    secret = {"name": "hf", "namespace": east_namespace}
    config_map = {"name": "settings", "namespace": east_namespace}
    apply(
        east,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": secret,
            "stringData": {"HF_TOKEN": "t0"},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": config_map, "data": {"mode": "fast"}},
    )
    pid = running_pid(east, east_namespace, "env")
    found = get(east, "pod", "-n", east_namespace, "env")
    variables = environ(pid)
    pod_ip = found["status"]["podIP"]
    assert {k: variables[k] for k in ("POD_IP", "NODE", "TOKEN", "MODE", "URL")} == {
        "POD_IP": pod_ip,
        "NODE": found["spec"]["nodeName"],
        "TOKEN": "t0",
        "MODE": "fast",
        "URL": f"http://{pod_ip}:8000",
    }


def test_empty_dir_volumes_are_the_pods_own_directories_at_their_mount_paths(
    east: Cluster, east_namespace: str
) -> None:
    engine = engine_container()
    engine["volumeMounts"] = [{"name": "scratch", "mountPath": "/tmp/modelplane-e2e-scratch"}]
    apply(east, pod("vol", east_namespace, engine, volumes=[{"name": "scratch", "emptyDir": {}}]))
    pid = running_pid(east, east_namespace, "vol")
    inside = Path(f"/proc/{pid}/root/tmp/modelplane-e2e-scratch")
    mounts = Path(f"/proc/{pid}/mountinfo").read_text()
    assert " /tmp/modelplane-e2e-scratch " in mounts
    (inside / "written-by-test").write_text("scratch")
    assert not Path("/tmp/modelplane-e2e-scratch/written-by-test").exists()


def test_a_failing_liveness_probe_restarts_the_container(
    east: Cluster, east_namespace: str
) -> None:
    engine = engine_container()
    engine["livenessProbe"] = {
        "httpGet": {"path": "/health", "port": 9999},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    apply(east, pod("live", east_namespace, engine))
    first = running_pid(east, east_namespace, "live")
    status = wait_for(
        "a restart", lambda: (s := container_status(east, east_namespace, "live"))
        and s.get("restartCount", 0) >= 1 and s,
    )  # fmt: skip
    assert "terminated" in status["lastState"]
    events = items(
        east, "events", "-n", east_namespace, "--field-selector=involvedObject.name=live"
    )
    assert any(
        e["reason"] == "Unhealthy" and "Liveness probe failed" in e["message"] for e in events
    )
    wait_for("the first process to be gone", lambda: not Path(f"/proc/{first}").exists())


def test_an_unknown_image_with_a_readiness_probe_never_turns_ready_and_says_why(
    east: Cluster, east_namespace: str
) -> None:
    container = {
        "name": "web",
        "image": "nginx:1.27",
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
    }
    apply(east, pod("unknown", east_namespace, container))

    def event() -> Json | None:
        found = items(
            east, "events", "-n", east_namespace, "--field-selector=involvedObject.name=unknown"
        )
        return next((e for e in found if e["reason"] == "NotSimulated"), None)

    assert (
        "image 'nginx:1.27' has no local command"
        in wait_for("the NotSimulated event", event)["message"]
    )
    found = get(east, "pod", "-n", east_namespace, "unknown")
    assert found["status"]["phase"] == "Running"
    assert condition(found, "Ready")["status"] == "False"


def test_graceful_deletion_stops_the_process_and_removes_the_pod(
    east: Cluster, east_namespace: str
) -> None:
    apply(east, pod("gone", east_namespace, engine_container()))
    pid = running_pid(east, east_namespace, "gone")
    east.kubectl("delete", "pod", "-n", east_namespace, "gone", "--wait=true", "--timeout=30s")
    assert not items(east, "pods", "-n", east_namespace, "--field-selector=metadata.name=gone")
    assert not os.path.exists(f"/proc/{pid}")


def test_a_failed_pod_that_never_restarts_is_failed_and_its_deletion_finishes(
    east: Cluster, east_namespace: str
) -> None:
    engine = engine_container("--max-concurrency=0")
    apply(east, pod("once", east_namespace, engine, restartPolicy="Never"))

    def failed() -> Json | None:
        found = get(east, "pod", "-n", east_namespace, "once")
        return found if found["status"].get("phase") == "Failed" else None

    found = wait_for("phase Failed", failed)
    terminated = found["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (2, "Error")
    east.kubectl("delete", "pod", "-n", east_namespace, "once", "--wait=true", "--timeout=30s")
    assert not items(east, "pods", "-n", east_namespace, "--field-selector=metadata.name=once")
