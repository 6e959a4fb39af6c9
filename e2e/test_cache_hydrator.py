"""cache-hydrator on the local fleet: a ModelCache staged through the Fleet API.

cluster-provisioner (Fleet API), fleet-scheduler, endpoint-manager and cache-hydrator
run as their own processes and identities (cache-hydrator's RBAC allows `get` on
Secrets and nothing more). `east` is given a ReadWriteMany StorageClass for the test (named in its
InferenceCluster's `spec.cluster.existing.cache.storageClassName`); `west` has none.
The session fleet has no volume provisioner yet, so east's claim stays Pending and the
hydration Job's pod cannot start: the cache's entry for east is Pending naming the
claim, and that is what is asserted. Checked:
- a ModelCache with an authSecret and a clusterSelector covering east: on east (only)
  its claim (RWX, the class, the size), the token's copy (the named key only) and the
  Job running `modelplane-hydrate` on the claim; `status.clusters[]` and
  `kubectl get mc` report it;
- a ModelCache whose footprint is west: its entry is Failed naming the field;
- endpoint-manager holds a replica of a deployment using the cache with CacheReady=False
  and the cache's state on its cluster, applying nothing;
- deleting a ModelCache a ModelDeployment uses is held (condition naming the
  deployment) until the deployment goes; then its copy on east is removed and it is gone;
- a selector narrowed away from east while a replica there uses the cache keeps east's
  copy until the replica goes, then removes it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import (
    Service,
    cluster_provisioner,
    endpoint_manager,
    fleet_scheduler,
    serving,
    tls_dir,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests"
FLEET_API_PORT = 50211
RWX_CLASS = "e2e-rwx"
TOKEN = "hf_e2e_token_value"
IMAGE = "registry.local/modelplane:e2e"
HUB = "http://hub.e2e.invalid"


def cache_hydrator(fleet: Fleet, port: int, fleet_api: str, log: Path) -> Service:
    tls = tls_dir(fleet, "cache-hydrator")
    return Service(
        fleet, "cache-hydrator", "cache_hydrator", port, log,
        f"--fleet={fleet_api}", f"--tls-cert={tls / 'tls.crt'}",
        f"--tls-key={tls / 'tls.key'}", f"--tls-ca={tls / 'ca.crt'}",
        f"--hydrate-image={IMAGE}", f"--hub={HUB}",
    )  # fmt: skip


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    """The services, with east given an RWX class (a StorageClass no provisioner serves)
    and west none; east's InferenceCluster is put back afterwards."""
    logs = tmp_path_factory.mktemp("services")
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    east.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": RWX_CLASS},
        "provisioner": "e2e.modelplane.ai/no-provisioner-yet",
        "volumeBindingMode": "Immediate",
    }))  # fmt: skip
    control.kubectl(
        "patch", "inferencecluster", "east", "--type=merge", "-p",
        json.dumps({"spec": {"cluster": {"existing": {"cache": {"storageClassName": RWX_CLASS}}}}}),
    )  # fmt: skip
    address = control.plan.address
    running = {
        "cluster-provisioner": cluster_provisioner(
            local_fleet, 9141, FLEET_API_PORT, logs / "cp.log"
        ),
        "fleet-scheduler": fleet_scheduler(local_fleet, 9142, 50212, logs / "fs.log"),
        "cache-hydrator": cache_hydrator(
            local_fleet, 9143, f"{address}:{FLEET_API_PORT}", logs / "ch.log"
        ),
        "endpoint-manager": endpoint_manager(
            local_fleet, 9144, f"{address}:{FLEET_API_PORT}", logs / "em.log"
        ),
    }
    try:
        with serving(control, running, drain=True) as ready:
            yield ready
            # every cache deleted while cache-hydrator runs, so their copies leave east
            control.kubectl("delete", "modelcaches", "--all", "-A", "--wait=false")
            wait_for("every ModelCache released",
                     lambda: not items(control, "modelcaches", "-A"), 120)  # fmt: skip
    finally:
        control.kubectl(
            "patch", "inferencecluster", "east", "--type=json",
            "-p", '[{"op": "remove", "path": "/spec/cluster/existing/cache"}]', check=False,
        )  # fmt: skip
        east.kubectl("delete", "storageclass", RWX_CLASS, "--ignore-not-found", check=False)


def model_cache(namespace: str, name: str, region: str) -> Json:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelCache",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": "HuggingFace",
            "huggingFace": {
                "repo": "acme/tiny-model",
                "revision": "main",
                "sizeGiB": 3,
                "authSecret": {"name": "hf-token"},
            },
            "clusterSelector": {"matchLabels": {"modelplane.ai/region": region}},
        },
    }


def token_secret(namespace: str) -> Json:
    value = base64.b64encode(TOKEN.encode()).decode()
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hf-token", "namespace": namespace},
        "data": {"HF_TOKEN": value, "UNRELATED": value},
    }  # fmt: skip


def qwen_using(namespace: str, cache: str) -> Json:
    """The documentation's qwen3-8b deployment on us-east, reading its weights from `cache`."""
    deployment: Json = yaml.safe_load(
        (SEED / "examples" / "qwen3-8b" / "model-deployment.yaml").read_text()
    )
    deployment["metadata"]["namespace"] = namespace
    deployment["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    deployment["spec"]["modelCacheRef"] = {"name": cache}
    return deployment


def entry(control: Cluster, namespace: str, name: str, cluster: str) -> Json | None:
    found = get(control, "modelcache", "-n", namespace, name)
    for each in (found.get("status") or {}).get("clusters") or []:
        if each["clusterName"] == cluster:
            return dict(each)
    return None


def named(cluster: Cluster, namespace: str, kind: str) -> list[str]:
    listed = cluster.kubectl(
        "get", kind, "-n", namespace, "-l", "modelplane.ai/cache", "-o", "json", check=False
    )
    if listed.returncode != 0:
        return []
    return sorted(o["metadata"]["name"] for o in json.loads(listed.stdout)["items"])


def test_a_cache_is_staged_on_its_footprint_only_and_reports_it(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control, east, west = (local_fleet.cluster(n) for n in ("control", "east", "west"))
    apply(control, token_secret(namespace), model_cache(namespace, "tiny", "us-east"))

    def names_the_claim() -> Json | None:
        found = entry(control, namespace, "tiny", "east")
        return found if found and "PersistentVolumeClaim" in found["message"] else None

    pending = wait_for("east's entry naming the claim", names_the_claim, 60)
    assert pending["phase"] == "Pending"
    assert pending["message"] == (
        f"PersistentVolumeClaim {namespace}/modelcache-tiny is Pending: {RWX_CLASS} has not "
        "provisioned a ReadWriteMany volume for it yet"
    )
    claim = get(east, "pvc", "-n", namespace, "modelcache-tiny")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == RWX_CLASS
    assert claim["spec"]["resources"]["requests"]["storage"] == "3Gi"
    assert claim["status"]["phase"] == "Pending"

    copy = get(east, "secret", "-n", namespace, "modelcache-tiny-token")
    assert {k: base64.b64decode(v).decode() for k, v in copy["data"].items()} == {"HF_TOKEN": TOKEN}

    (job_name,) = named(east, namespace, "jobs")
    job = get(east, "job", "-n", namespace, job_name)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert (container["image"], container["command"]) == (IMAGE, ["modelplane-hydrate"])
    args = container["args"]
    assert args[args.index("--repo") + 1] == "acme/tiny-model"
    assert args[args.index("--dir") + 1] == "/mnt/models"
    assert args[args.index("--size-gib") + 1] == "3"
    assert {"name": "HF_ENDPOINT", "value": HUB} in container["env"]
    claims = [v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"claimName": "modelcache-tiny"}]

    for kind in ("pvc", "jobs", "configmaps"):
        assert named(west, namespace, kind) == [], f"{kind} on west, outside the footprint"
    status = get(control, "modelcache", "-n", namespace, "tiny")["status"]
    assert [e["clusterName"] for e in status["clusters"]] == ["east"]
    assert status["readyClusters"] == "0/1"
    ready = condition(get(control, "modelcache", "-n", namespace, "tiny"), "Ready")
    assert ready["status"] == "False"
    table = control.kubectl("get", "mc", "-n", namespace).stdout.splitlines()
    header = ["NAME", "SOURCE", "SIZE", "CLUSTERS", "PROGRESS", "READY"]
    assert table[0].split()[:6] == header, table
    assert table[1].split()[:5] == ["tiny", "HuggingFace", "3", "0/1", "False"], table


def test_a_cluster_without_an_rwx_class_fails_naming_the_field(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control, west = local_fleet.cluster("control"), local_fleet.cluster("west")
    apply(control, token_secret(namespace), model_cache(namespace, "westward", "us-west"))
    failed = wait_for("west's entry", lambda: entry(control, namespace, "westward", "west"), 60)
    assert failed == {
        "clusterName": "west",
        "phase": "Failed",
        "message": "InferenceCluster west spec.cluster.existing.cache.storageClassName: not "
        "set, so the cluster has no ReadWriteMany StorageClass for ModelCache "
        f"{namespace}/westward",
    }
    assert named(west, namespace, "pvc") == []


def test_deleting_a_cache_a_deployment_uses_is_held_until_the_deployment_goes(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    apply(control, token_secret(namespace), model_cache(namespace, "held", "us-east"))
    wait_for("the claim on east", lambda: named(east, namespace, "pvc"), 60)
    apply(control, qwen_using(namespace, "held"))
    (replica,) = wait_for(
        "a ModelReplica", lambda: items(control, "modelreplicas", "-n", namespace), 60
    )
    name = replica["metadata"]["name"]

    def waiting() -> Json | None:
        found = get(control, "modelreplica", "-n", namespace, name)
        gate = condition(found, "CacheReady")
        return gate if "PersistentVolumeClaim" in gate.get("message", "") else None

    gate = wait_for("the replica waiting for its cache", waiting, 60)
    assert (gate["status"], gate["reason"]) == ("False", "CacheNotReady")
    assert gate["message"] == (
        f"ModelReplica {namespace}/{name}: waiting for ModelCache {namespace}/held on east: "
        f"Pending: PersistentVolumeClaim {namespace}/modelcache-held is Pending: {RWX_CLASS} "
        "has not provisioned a ReadWriteMany volume for it yet"
    )
    assert items(east, "deployments", "-n", namespace) == [], "nothing applied before the cache"

    control.kubectl("delete", "modelcache", "-n", namespace, "held", "--wait=false")

    def held() -> Json | None:
        found = condition(get(control, "modelcache", "-n", namespace, "held"), "Ready")
        return found if found.get("reason") == "InUse" else None

    reason = wait_for("the deletion held", held, 60)
    assert reason["message"].startswith(
        f"ModelCache {namespace}/held: deletion held: ModelDeployment {namespace}/qwen3-8b "
        "still uses it (ModelReplica "
    ), reason
    assert named(east, namespace, "pvc") == ["modelcache-held"], "nothing removed while held"

    control.kubectl("delete", "modeldeployment", "-n", namespace, "qwen3-8b", "--wait=false")
    wait_for("the cache gone", lambda: not items(control, "modelcaches", "-n", namespace), 120)
    for kind in ("jobs", "configmaps", "pvc", "secrets"):
        assert named(east, namespace, kind) == [], f"{kind} left on east"


def test_a_narrowed_selector_keeps_a_used_copy_until_its_replica_goes(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    """The footprint moves from east to west while a replica on east uses the cache: east's
    copy stays (its entry says who holds it) until the deployment goes, then it is removed
    and east's entry dropped; west, without an RWX class, is Failed meanwhile."""
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    apply(control, token_secret(namespace), model_cache(namespace, "moving", "us-east"))
    wait_for("the claim on east", lambda: named(east, namespace, "pvc"), 60)
    apply(control, qwen_using(namespace, "moving"))
    (replica,) = wait_for(
        "a ModelReplica", lambda: items(control, "modelreplicas", "-n", namespace), 60
    )
    apply(control, model_cache(namespace, "moving", "us-west"))

    def kept() -> Json | None:
        found = entry(control, namespace, "moving", "east")
        return found if found and "outside" in found["message"] else None

    assert wait_for("east's copy kept", kept, 60)["message"] == (
        "outside spec.clusterSelector; kept while ModelReplica "
        f"{namespace}/{replica['metadata']['name']} uses it"
    )
    assert named(east, namespace, "pvc") == ["modelcache-moving"]
    west = wait_for("west's entry", lambda: entry(control, namespace, "moving", "west"), 60)
    assert west["phase"] == "Failed"
    assert get(control, "modelcache", "-n", namespace, "moving")["status"]["readyClusters"] == "0/1"

    control.kubectl("delete", "modeldeployment", "-n", namespace, "qwen3-8b", "--wait=false")
    wait_for("east's copy removed", lambda: not named(east, namespace, "pvc"), 120)
    wait_for(
        "east's entry dropped", lambda: entry(control, namespace, "moving", "east") is None, 60
    )
