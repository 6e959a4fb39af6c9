"""Cache storage on the local fleet: the RWX class, PVC mounts, the hub, a model loaded from it.

On the inference cluster `east`: a claim of class `modelplane-rwx` is provisioned by the
harness's provisioner and bound by kube-controller-manager's binder; a pod on one node
writes into it and a pod on another node reads it, through a read-only mount that
refuses writes; deleting the claim deletes the volume and its directory. A claim the
class cannot answer (a block device) gets a `ProvisioningFailed` event naming the field;
a pod whose claim is not bound waits in ContainerCreating, then runs once a volume
binds it. Then the
hydration job (`modelplane-hydrate` from this tree's image, pushed to the fleet
registry) fills a claim from the fleet's hub with a gated repository and a token
Secret, and the engine simulator serves from `--model /mnt/models` on that claim.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from modelplane_hubsim import seed
from modelplane_imagebuild import build
from modelplane_localfleet import controlplane, hub
from modelplane_localfleet.binaries import default_cache
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.layout import CONTROL

from e2e.kube import Json, apply, condition, get, is_ready, items, wait_for

pytestmark = pytest.mark.usefixtures("local_fleet")

ROOT = Path(__file__).resolve().parents[1]
CLASS = "modelplane-rwx"
PROBE = "modelplane/python-probe"
NODE = "spec.nodeName"
REPO, TOKEN = "acme/tiny-gated", "hf_e2e_cache_token"
WRITE = """
import json, os
open("/mnt/shared/note.txt", "w").write("written on " + os.environ["NODE"])
print(json.dumps({"wrote": True}), flush=True)
"""
READ = """
import json, os
content = open("/mnt/shared/note.txt").read()
try:
    open("/mnt/shared/other.txt", "w").write("should not land")
    refused = None
except OSError as error:
    refused = os.strerror(error.errno)
print(json.dumps({"content": content, "refused": refused}), flush=True)
"""


def _claim(namespace: str, name: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "storageClassName": CLASS,
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def _probe_pod(namespace: str, name: str, node: str, script: str, read_only: bool) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "containers": [
                {
                    "name": "main",
                    "image": PROBE,
                    "command": ["python", "-c", script],
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": NODE}}}],
                    "volumeMounts": [
                        {"name": "shared", "mountPath": "/mnt/shared", "readOnly": read_only}
                    ],
                }
            ],
            "volumes": [{"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}],
        },
    }  # fmt: skip


def _bound(cluster: Cluster, namespace: str, name: str) -> Json:
    def check() -> Json | None:
        claim = get(cluster, "pvc", "-n", namespace, name)
        return claim if claim.get("status", {}).get("phase") == "Bound" else None

    return wait_for(f"claim {namespace}/{name} to be bound", check, timeout_s=60)


def _finished(cluster: Cluster, namespace: str, name: str) -> Json:
    def check() -> Json | None:
        pod = get(cluster, "pod", "-n", namespace, name)
        return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    return wait_for(f"pod {namespace}/{name} to finish", check, timeout_s=90)


def _log(fleet: Fleet, cluster: str, pod: Json, container: str) -> str:
    meta = pod["metadata"]
    folder = f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
    path = fleet.state / "run" / cluster / "node-agent" / "pods" / folder / "logs"
    return (path / f"{container}.log").read_text()


def _report(fleet: Fleet, cluster: str, pod: Json) -> Json:
    lines = [line for line in _log(fleet, cluster, pod, "main").splitlines() if line[:1] == "{"]
    assert lines, f"pod {pod['metadata']['name']} printed no report"
    report: Json = json.loads(lines[-1])
    return report


def test_a_claim_is_shared_across_nodes_read_only_where_asked_and_deleted_with_its_directory(
    local_fleet: Fleet, east: Cluster, east_namespace: str
) -> None:
    klass = get(east, "storageclass", CLASS)
    assert (klass["provisioner"], klass["reclaimPolicy"]) == (
        "localfleet.modelplane.ai/rwx",
        "Delete",
    )
    began = time.monotonic()
    apply(east, _claim(east_namespace, "shared"))
    claim = _bound(east, east_namespace, "shared")
    print(f"figure: claim applied to Bound in {time.monotonic() - began:.1f}s")
    volume = get(east, "pv", claim["spec"]["volumeName"])
    assert volume["spec"]["accessModes"] == ["ReadWriteMany"]
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    directory = Path(volume["spec"]["hostPath"]["path"])
    assert directory.parent == local_fleet.state / "storage" / "east"
    assert directory.is_dir()

    apply(east, _probe_pod(east_namespace, "writer", "east-l4-0", WRITE, read_only=False))
    writer = _finished(east, east_namespace, "writer")
    assert writer["status"]["phase"] == "Succeeded", writer["status"]
    apply(east, _probe_pod(east_namespace, "reader", "east-l4-1", READ, read_only=True))
    reader = _finished(east, east_namespace, "reader")
    assert reader["status"]["phase"] == "Succeeded", reader["status"]
    assert reader["spec"]["nodeName"] != writer["spec"]["nodeName"]
    report = _report(local_fleet, "east", reader)
    assert report == {"content": "written on east-l4-0", "refused": "Read-only file system"}
    assert (directory / "note.txt").read_text() == "written on east-l4-0"
    assert not (directory / "other.txt").exists()

    east.kubectl("delete", "pod", "-n", east_namespace, "writer", "reader", "--wait=true")
    east.kubectl("delete", "pvc", "-n", east_namespace, "shared", "--wait=true")
    wait_for(
        "the released volume and its directory to be deleted",
        lambda: not directory.exists()
        and not items(east, "pv", f"--field-selector=metadata.name={volume['metadata']['name']}"),
        timeout_s=60,
    )


def test_a_claim_the_class_cannot_answer_gets_an_event_naming_the_field(
    east: Cluster, east_namespace: str
) -> None:
    claim = _claim(east_namespace, "raw")
    claim["spec"]["volumeMode"] = "Block"
    apply(east, claim)

    def refused() -> Json | None:
        selector = "--field-selector=involvedObject.name=raw,reason=ProvisioningFailed"
        events = items(east, "events", "-n", east_namespace, selector)
        return events[0] if events else None

    event = wait_for("the claim's ProvisioningFailed event", refused, timeout_s=60)
    assert event["type"] == "Warning"
    assert event["message"].startswith(
        f"PersistentVolumeClaim {east_namespace}/raw spec.volumeMode: "
    ), event["message"]
    assert get(east, "pvc", "-n", east_namespace, "raw")["status"]["phase"] == "Pending"


def test_a_pod_whose_claim_is_not_bound_waits_in_container_creating_then_runs(
    local_fleet: Fleet, east: Cluster, east_namespace: str
) -> None:
    claim = _claim(east_namespace, "shared")
    claim["spec"]["storageClassName"] = "manual"  # no provisioner: it stays Pending
    apply(east, claim)
    pod = _probe_pod(east_namespace, "waiting", "east-l4-2", READ, read_only=True)
    pod["spec"]["nodeName"] = "east-l4-2"  # past the scheduler, which would hold it Pending
    apply(east, pod)

    def waiting() -> Json | None:
        found = get(east, "pod", "-n", east_namespace, "waiting")
        statuses = found.get("status", {}).get("containerStatuses") or []
        state = statuses[0].get("state", {}).get("waiting", {}) if statuses else {}
        return state if state.get("reason") == "ContainerCreating" else None

    state = wait_for("the pod to wait for its claim", waiting, timeout_s=60)
    assert state["message"] == (
        "volume 'shared'.persistentVolumeClaim.claimName: "
        "PersistentVolumeClaim 'shared' is not bound yet (Pending)"
    )

    directory = local_fleet.state / f"manual-{east_namespace}"
    directory.mkdir()
    (directory / "note.txt").write_text("written by hand")
    volume_name = f"manual-{east_namespace}"
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name},
        "spec": {
            "storageClassName": "manual",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "hostPath": {"path": str(directory)},
            "claimRef": {"namespace": east_namespace, "name": "shared"},
        },
    }
    try:
        apply(east, volume)
        done = _finished(east, east_namespace, "waiting")
        assert done["status"]["phase"] == "Succeeded", done["status"]
        report = _report(local_fleet, "east", done)
        assert report == {"content": "written by hand", "refused": "Read-only file system"}
    finally:
        east.kubectl("delete", "pv", volume_name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This tree's image in the fleet registry (`repository@digest`), with `modelplane-hydrate`."""
    layout = tmp_path_factory.mktemp("image") / "layout"
    build.build(ROOT, layout, build.default_cache(), build.uv_next_to_python(), print)
    return controlplane.publish_image(layout, default_cache(), tag="e2e-cache")


def _hub_repository(local_fleet: Fleet) -> dict[str, bytes]:
    root = hub.configured_root(local_fleet.cluster(CONTROL).config_dir)
    assert root is not None, "the session fleet runs without a hub"
    files = seed.synthetic_model(shards=2, shard_bytes=3 << 20, seed=15)
    seed.write_revision(root, REPO, "main", files)
    seed.configure(root, REPO, gated=True, tokens=(TOKEN,))
    return files


def _hub_commit() -> str:
    request = urllib.request.Request(
        f"{hub.ENDPOINT}/api/models/{REPO}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        commit: str = json.load(answer)["sha"]
    return commit


def _job(namespace: str, image: str) -> Json:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "hydrate", "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "hydrate",
                        "image": image,
                        "command": ["modelplane-hydrate", "--repo", REPO, "--dir", "/mnt/models",
                                    "--size-gib", "1", "--token-file", "/var/run/secrets/hf/token"],
                        "env": [{"name": "HF_ENDPOINT", "value": f"http://{hub.HOSTNAME}:{hub.PORT}"}],
                        "volumeMounts": [
                            {"name": "models", "mountPath": "/mnt/models"},
                            {"name": "token", "mountPath": "/var/run/secrets/hf", "readOnly": True},
                        ],
                    }],
                    "volumes": [
                        {"name": "models", "persistentVolumeClaim": {"claimName": "weights"}},
                        {"name": "token", "secret": {"secretName": "hf-token"}},
                    ],
                }
            },
        },
    }  # fmt: skip


def _engine(namespace: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "engine", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "engine",
                "image": "modelplane/enginesim:dev",
                "args": ["--model=/mnt/models", "--port=8000"],
                "env": [{"name": "ENGINESIM_LOAD_RATE_MIB_S", "value": "64"}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8000},
                                   "periodSeconds": 1},
                "volumeMounts": [{"name": "models", "mountPath": "/mnt/models", "readOnly": True}],
            }],
            "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "weights"}}],
        },
    }  # fmt: skip


def _pod_of_job(cluster: Cluster, namespace: str) -> Callable[[], Json | None]:
    def check() -> Json | None:
        found = items(cluster, "pods", "-n", namespace, "-l", "job-name=hydrate")
        return found[0] if found else None

    return check


def test_the_hydration_job_fills_a_claim_from_the_hub_and_the_engine_serves_it(
    local_fleet: Fleet, east: Cluster, east_namespace: str, image: str
) -> None:
    files = _hub_repository(local_fleet)
    commit = _hub_commit()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hf-token", "namespace": east_namespace},
        "stringData": {"token": TOKEN},
    }
    apply(east, secret, _claim(east_namespace, "weights"))
    claim = _bound(east, east_namespace, "weights")
    directory = Path(get(east, "pv", claim["spec"]["volumeName"])["spec"]["hostPath"]["path"])
    apply(east, _job(east_namespace, image))

    def finished() -> Json | None:
        job = get(east, "job", "-n", east_namespace, "hydrate")
        done = condition(job, "Complete").get("status") == "True"
        return job if done or condition(job, "Failed").get("status") == "True" else None

    began = time.monotonic()
    job = wait_for("the hydration job to finish", finished, timeout_s=180)
    print(f"figure: hydration Job applied to Complete in {time.monotonic() - began:.1f}s")
    pod = wait_for("the job's pod", _pod_of_job(east, east_namespace))
    assert condition(job, "Complete").get("status") == "True", _log(
        local_fleet, "east", pod, "hydrate"
    )
    marker = json.loads((directory / ".modelplane" / "ready.json").read_text())
    assert (marker["repo"], marker["commit"]) == (REPO, commit)
    for name, data in files.items():
        assert (directory / name).read_bytes() == data, name

    apply(east, _engine(east_namespace))

    def ready() -> Json | None:
        pod = get(east, "pod", "-n", east_namespace, "engine")
        return pod if is_ready(pod) else None

    engine = wait_for("the engine to be ready", ready, timeout_s=90)
    url = f"http://{engine['status']['podIP']}:8000/v1/models"
    with urllib.request.urlopen(url, timeout=10) as answer:
        models = json.load(answer)["data"]
    assert [(m["id"], m["root"]) for m in models] == [("/mnt/models", "/mnt/models")]
    shards = sorted(n for n in files if n.endswith(".safetensors"))
    total = sum(len(files[n]) for n in shards)
    loaded = [
        line
        for line in _log(local_fleet, "east", engine, "engine").splitlines()
        if line.startswith("loaded /mnt/models")
    ]
    print(f"figure: {loaded}")
    assert loaded and loaded[0].startswith(
        f"loaded /mnt/models: {len(shards)} safetensors files, {len(shards)} tensors, "
        f"{total / (1 << 20):.1f} MiB"
    ), loaded
