"""cache-hydrator on the local fleet: a ModelCache staged through the Fleet API.

cluster-provisioner (Fleet API), fleet-scheduler, endpoint-manager and cache-hydrator
run as their own processes and identities (cache-hydrator's RBAC allows `get` on
Secrets and nothing more). east and west both name the fleet's RWX class
`modelplane-rwx` (the harness's provisioner); the Jobs download a small gated
repository the module writes into the fleet's hub, with the token Secret as authSecret.
Checked:
- a ModelCache with an authSecret and a clusterSelector covering east: on east (only)
  its claim (RWX, the class, the size), the token's copy (the named key only) and the
  Job running `modelplane-hydrate` on the claim; it reaches Ready with the hub's bytes
  on the volume and the hub's commit in `status.clusters[]`; `kubectl get mc` reports it;
- with west's `cache` field removed for the test (and put back after), a ModelCache
  whose footprint is west: its entry is Failed naming the field;
- endpoint-manager holds a replica of a deployment using the cache with CacheReady=False
  and the cache's state on its cluster, applying nothing, while the copy is not Ready;
- deleting a ModelCache a ModelDeployment uses is held (condition naming the
  deployment) until the deployment goes; then its copy on east is removed and it is gone;
- a selector narrowed away from east while a replica there uses the cache keeps east's
  copy until the replica goes, then removes it; west's copy is staged meanwhile;
- the hydration job killed half-way: with a repository the hub serves slowly (its
  `.hub.json` pace, so the shared hub stays fast for the others), the job's process is
  SIGKILLed while the cache reports Hydrating between 20% and 80%; the Job's next pod
  resumes from the volume, the cache reaches Ready with the hub's commit and bytes, and
  the hub sent that repository under 105% of its size in all.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.modelcache import (
    HUB,
    HYDRATE_IMAGE,
    cache_hydrator,
    caches_released,
    gated_repository,
    hub_bytes_served,
    hub_commit,
    token_secret,
)
from e2e.services import Service, cluster_provisioner, endpoint_manager, fleet_scheduler, serving

pytestmark = pytest.mark.usefixtures("local_fleet")
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests"
FLEET_API_PORT = 50211
RWX_CLASS = "modelplane-rwx"
REPO, TOKEN = "acme/tiny-hydrated", "hf_e2e_token_value"
SLOW_REPO = "acme/slow-hydrated"  # 16 MiB served at 1 MiB/s: a download to interrupt


@pytest.fixture(scope="module")
def hub_files(local_fleet: Fleet) -> dict[str, bytes]:
    """The gated repository every cache of this module stages, in the fleet's hub."""
    return gated_repository(local_fleet, REPO, TOKEN, seed_value=151)


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory, hub_files: dict[str, bytes]
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
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
    with serving(control, running, drain=True) as ready, caches_released(control):
        yield ready


@pytest.fixture
def west_without_rwx(local_fleet: Fleet) -> Iterator[None]:
    """west's InferenceCluster without `spec.cluster.existing.cache` for one test; put back
    as e2e/fleet.yaml has it afterwards, even on failure."""
    control = local_fleet.cluster("control")
    control.kubectl(
        "patch", "inferencecluster", "west", "--type=json",
        "-p", '[{"op": "remove", "path": "/spec/cluster/existing/cache"}]',
    )  # fmt: skip
    try:
        yield
    finally:
        control.kubectl("apply", "-f", str(FLEET_FILE))


def model_cache(namespace: str, name: str, region: str, repo: str = REPO) -> Json:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelCache",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": "HuggingFace",
            "huggingFace": {
                "repo": repo,
                "revision": "main",
                "sizeGiB": 1,
                "authSecret": {"name": "hf-token", "key": "HF_TOKEN"},
            },
            "clusterSelector": {"matchLabels": {"modelplane.ai/region": region}},
        },
    }


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


def volume_of(cluster: Cluster, namespace: str, claim: str) -> Path:
    """The folder of the volume bound to `claim` (the harness's provisioner: a hostPath)."""
    found = get(cluster, "pvc", "-n", namespace, claim)
    return Path(get(cluster, "pv", found["spec"]["volumeName"])["spec"]["hostPath"]["path"])


def hydrating(cmdline: list[str], repo: str) -> bool:
    """Whether a process's command line is `modelplane-hydrate --repo <repo> ...`."""
    job = any(arg.endswith("/modelplane-hydrate") for arg in cmdline)
    return job and "--repo" in cmdline[:-1] and cmdline[cmdline.index("--repo") + 1] == repo


def kill_hydration(repo: str) -> int:
    """SIGKILLs the one running hydration job of `repo` (the node agent runs pods' processes
    in this PID namespace); its pid."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue  # not a process, or gone meanwhile
        if proc.name.isdigit() and hydrating(cmdline, repo):
            found.append(int(proc.name))
    assert len(found) == 1, f"hydration processes of {repo}: {found}"
    os.kill(found[0], signal.SIGKILL)
    return found[0]


def staged_on(control: Cluster, namespace: str, name: str, cluster: str) -> Json | None:
    """`cluster`'s entry of the cache once Ready (fails at once if it is Failed)."""
    found = entry(control, namespace, name, cluster)
    assert not found or found["phase"] != "Failed", found
    return found if found and found["phase"] == "Ready" else None


def test_a_cache_is_staged_on_its_footprint_only_and_reports_it(
    local_fleet: Fleet, services: dict[str, Service], namespace: str, hub_files: dict[str, bytes]
) -> None:
    control, east, west = (local_fleet.cluster(n) for n in ("control", "east", "west"))
    apply(control, token_secret(namespace, TOKEN), model_cache(namespace, "tiny", "us-east"))

    (job_name,) = wait_for("the Job on east", lambda: named(east, namespace, "jobs"), 60)
    job = get(east, "job", "-n", namespace, job_name)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert (container["image"], container["command"]) == (HYDRATE_IMAGE, ["modelplane-hydrate"])
    args = container["args"]
    assert args[args.index("--repo") + 1] == REPO
    assert args[args.index("--dir") + 1] == "/mnt/models"
    assert args[args.index("--size-gib") + 1] == "1"
    assert {"name": "HF_ENDPOINT", "value": HUB} in container["env"]
    claims = [v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"claimName": "modelcache-tiny"}]
    copy = get(east, "secret", "-n", namespace, "modelcache-tiny-token")
    assert {k: base64.b64decode(v).decode() for k, v in copy["data"].items()} == {"HF_TOKEN": TOKEN}

    ready = wait_for(
        "east's copy Ready", lambda: staged_on(control, namespace, "tiny", "east"), 180
    )
    total = sum(len(data) for data in hub_files.values())
    assert ready["commit"] == hub_commit(REPO, TOKEN)
    assert (ready["bytesDone"], ready["bytesTotal"]) == (total, total), ready
    claim = get(east, "pvc", "-n", namespace, "modelcache-tiny")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == RWX_CLASS
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["status"]["phase"] == "Bound"
    folder = volume_of(east, namespace, "modelcache-tiny")
    for path, data in hub_files.items():
        assert (folder / path).read_bytes() == data, path

    for kind in ("pvc", "jobs", "configmaps"):
        assert named(west, namespace, kind) == [], f"{kind} on west, outside the footprint"
    cache = get(control, "modelcache", "-n", namespace, "tiny")
    assert [e["clusterName"] for e in cache["status"]["clusters"]] == ["east"]
    assert cache["status"]["readyClusters"] == "1/1"
    assert condition(cache, "Ready")["status"] == "True"
    table = control.kubectl("get", "mc", "-n", namespace).stdout.splitlines()
    header = ["NAME", "SOURCE", "SIZE", "CLUSTERS", "PROGRESS", "READY"]
    assert table[0].split()[:6] == header, table
    assert table[1].split()[:6] == ["tiny", "HuggingFace", "1", "1/1", "100%", "True"], table


@pytest.mark.usefixtures("west_without_rwx")
def test_a_cluster_without_an_rwx_class_fails_naming_the_field(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control, west = local_fleet.cluster("control"), local_fleet.cluster("west")
    apply(control, token_secret(namespace, TOKEN), model_cache(namespace, "westward", "us-west"))
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
    """The token Secret comes after the cache and the deployment, so the replica is first
    seen waiting on a Failed copy; with the Secret the copy is staged and the replica
    starts."""
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    apply(control, model_cache(namespace, "held", "us-east"), qwen_using(namespace, "held"))
    (replica,) = wait_for(
        "a ModelReplica", lambda: items(control, "modelreplicas", "-n", namespace), 60
    )
    name = replica["metadata"]["name"]

    def gate() -> Json:
        return condition(get(control, "modelreplica", "-n", namespace, name), "CacheReady")

    def on_the_token() -> Json | None:
        found = gate()
        return found if "authSecret" in found.get("message", "") else None

    waiting = wait_for("the replica waiting for its cache", on_the_token, 60)
    assert (waiting["status"], waiting["reason"]) == ("False", "CacheNotReady")
    assert waiting["message"].startswith(
        f"ModelReplica {namespace}/{name}: waiting for ModelCache {namespace}/held on east: "
        "Failed: "
    ), waiting
    assert "spec.huggingFace.authSecret.name" in waiting["message"], waiting
    assert items(east, "deployments", "-n", namespace) == [], "nothing applied before the cache"

    apply(control, token_secret(namespace, TOKEN))
    wait_for("the replica past its cache", lambda: gate().get("status") == "True", 180)
    wait_for("the Deployment on east", lambda: items(east, "deployments", "-n", namespace), 60)

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
    and east's entry dropped; west's copy is staged meanwhile."""
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    apply(control, token_secret(namespace, TOKEN), model_cache(namespace, "moving", "us-east"))
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
    wait_for("west's copy Ready", lambda: staged_on(control, namespace, "moving", "west"), 180)
    assert get(control, "modelcache", "-n", namespace, "moving")["status"]["readyClusters"] == "1/1"

    control.kubectl("delete", "modeldeployment", "-n", namespace, "qwen3-8b", "--wait=false")
    wait_for("east's copy removed", lambda: not named(east, namespace, "pvc"), 120)
    wait_for(
        "east's entry dropped", lambda: entry(control, namespace, "moving", "east") is None, 60
    )


def test_a_hydration_killed_half_way_resumes_and_fetches_little_twice(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    files = gated_repository(local_fleet, SLOW_REPO, TOKEN, 153, shards=16, throttle_mib_s=1.0)
    total = sum(len(data) for data in files.values())
    assert hub_bytes_served(SLOW_REPO) == 0
    cache = model_cache(namespace, "resumed", "us-east", repo=SLOW_REPO)
    apply(control, token_secret(namespace, TOKEN), cache)

    def half_way() -> Json | None:
        found = entry(control, namespace, "resumed", "east")
        if not found or found.get("phase") != "Hydrating" or not found.get("bytesTotal"):
            assert not found or found["phase"] in ("Pending", "Hydrating"), found
            return None
        share = found.get("bytesDone", 0) / found["bytesTotal"]
        assert share <= 0.8, f"past 80% before it could be killed: {found}"
        return found if share >= 0.2 else None

    seen = wait_for("east's copy Hydrating past 20%", half_way, 120)
    assert seen["bytesTotal"] == total, seen
    kill_hydration(SLOW_REPO)
    served_at_kill = hub_bytes_served(SLOW_REPO)
    assert served_at_kill < total, "the kill came after the whole download"

    ready = wait_for(
        "east's copy Ready after the kill",
        lambda: staged_on(control, namespace, "resumed", "east"),
        180,
    )
    assert ready["commit"] == hub_commit(SLOW_REPO, TOKEN)
    assert (ready["bytesDone"], ready["bytesTotal"]) == (total, total), ready
    folder = volume_of(east, namespace, "modelcache-resumed")
    for path, data in files.items():
        assert (folder / path).read_bytes() == data, path
    (job_name,) = named(east, namespace, "jobs")

    def job_done() -> Json | None:
        found: Json = get(east, "job", "-n", namespace, job_name)["status"]
        return found if found.get("succeeded") else None

    job = wait_for("the Job's resumed pod done", job_done, 60)
    assert (job.get("failed"), job["succeeded"]) == (1, 1), job  # the killed pod, its resume
    served = hub_bytes_served(SLOW_REPO)
    twice = served - total
    print(f"figure: fetched twice after a kill at {served_at_kill / total:.0%}: {twice} bytes "
          f"({twice / total:.2%} of {total})")  # fmt: skip
    assert total <= served < 1.05 * total, (served, total)
