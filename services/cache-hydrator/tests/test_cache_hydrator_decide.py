"""cache-hydrator's whole decision for one ModelCache (pure): footprint, missing RWX class,
the token's copy, status mirrored from the job's report, the finalizer's hold and release,
and a selector narrowed while a replica uses the cache. Expected messages and names are
written out here."""

from __future__ import annotations

import base64
import datetime
import json
import re
from typing import Any

from cache_hydrator.decide import Decision, Observed, decide, rwx_class
from cache_hydrator.render import JobConfig, job_name

Json = dict[str, Any]
T0 = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.UTC)
STAMP = "2026-12-03T12:00:00Z"
FINALIZER = "modelplane.ai/cache-hydrator"
JOB = JobConfig(image="registry.local/modelplane:1", hub_endpoint="http://hub.local")
TOKEN = {"HF_TOKEN": base64.b64encode(b"hf_secret").decode()}
CLAIM = "modelcache-qwen"


# --- builders ---------------------------------------------------------------------------


def cache(
    *, selector: dict[str, str] | None = None, status: Json | None = None, **meta: Any
) -> Json:
    spec: Json = {
        "source": "HuggingFace",
        "huggingFace": {
            "repo": "Qwen/Qwen3-0.6B",
            "revision": "main",
            "sizeGiB": 2,
            "authSecret": {"name": "hf-token", "key": "HF_TOKEN"},
        },
    }
    if selector is not None:
        spec["clusterSelector"] = {"matchLabels": selector}
    out: Json = {
        "metadata": {
            "name": "qwen",
            "namespace": "ml",
            "uid": "c-1",
            "generation": 2,
            "finalizers": [FINALIZER],
            **meta,
        },
        "spec": spec,
    }
    if status is not None:
        out["status"] = status
    return out


def cluster(name: str, region: str, *, rwx: str | None = "shared-rwx", ready: bool = True) -> Json:
    existing: Json = {"secretRef": {"name": f"{name}-kubeconfig", "key": "kubeconfig"}}
    if rwx is not None:
        existing["cache"] = {"storageClassName": rwx}
    return {
        "metadata": {"name": name, "labels": {"modelplane.ai/region": region}},
        "spec": {"cluster": {"source": "Existing", "existing": existing}},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "message": "down"}
            ]
        },
    }


CLUSTERS = {"east": cluster("east", "us-east"), "west": cluster("west", "us-west")}


def obj(kind: str, name: str, **extra: Any) -> Json:
    api = {"Job": "batch/v1"}.get(kind, "v1")
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "ml"}, **extra}


def progress(phase: str, done: int, total: int, message: str = "") -> Json:
    report = {"phase": phase, "step": "downloading", "commit": "c0ffee", "bytesDone": done,
              "bytesTotal": total, "message": message}  # fmt: skip
    return obj("ConfigMap", job_name(cache()), data={"status.json": json.dumps(report)})


def bound_claim() -> Json:
    return obj("PersistentVolumeClaim", CLAIM, status={"phase": "Bound"})


def replica(name: str, on: str, deployment: str = "qwen-chat") -> Json:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "clusterName": on,
            "deploymentName": deployment,
            "modelCacheRef": {"name": "qwen"},
        },
    }


def seen(**fields: Any) -> Observed:
    fields.setdefault("clusters", CLUSTERS)
    fields.setdefault("token", TOKEN)
    return Observed(job=JOB, **fields)


def entries(decision: Decision) -> dict[str, Json]:
    assert decision.status is not None
    return {e["clusterName"]: e for e in decision.status["clusters"]}


def ready_condition(decision: Decision) -> Json:
    assert decision.status is not None
    return next(c for c in decision.status["conditions"] if c["type"] == "Ready")


def kinds(objects: tuple[Json, ...]) -> list[str]:
    return [o["kind"] for o in objects]


# --- the footprint ------------------------------------------------------------------------


def test_a_selector_covering_east_stages_there_only_with_every_object() -> None:
    decision = decide(
        cache(selector={"modelplane.ai/region": "us-east"}), seen(remote={"east": ()}), T0
    )
    assert set(decision.apply) == {"east"}
    assert kinds(decision.apply["east"]) == [
        "Namespace", "PersistentVolumeClaim", "Secret", "ConfigMap",
        "ServiceAccount", "Role", "RoleBinding", "Job",
    ]  # fmt: skip
    claim = decision.apply["east"][1]
    assert claim["metadata"] == {
        "name": CLAIM, "namespace": "ml",
        "labels": {"app.kubernetes.io/managed-by": "modelplane-cache-hydrator",
                   "modelplane.ai/cache": "qwen"},
    }  # fmt: skip
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "shared-rwx",
        "resources": {"requests": {"storage": "2Gi"}},
    }
    assert set(entries(decision)) == {"east"}
    assert decision.status is not None
    assert decision.status["readyClusters"] == "0/1"
    assert not decision.add_finalizer


def test_an_unset_selector_stages_on_every_cluster_and_a_new_cache_gets_the_finalizer() -> None:
    decision = decide(cache(finalizers=[]), seen(remote={"east": (), "west": ()}), T0)
    assert set(decision.apply) == {"east", "west"}
    assert decision.add_finalizer


def test_the_job_runs_the_hydration_job_on_the_claim_with_the_token_file() -> None:
    job = decide(cache(), seen(remote={"east": (), "west": ()}), T0).apply["east"][-1]
    assert re.fullmatch(r"modelcache-qwen-[0-9a-f]{8}", job["metadata"]["name"])
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.local/modelplane:1"
    assert container["command"] == ["modelplane-hydrate"]
    assert container["args"] == [
        "--repo", "Qwen/Qwen3-0.6B", "--revision", "main", "--dir", "/mnt/models",
        "--size-gib", "2", "--report-configmap", job["metadata"]["name"],
        "--token-file", "/var/run/secrets/modelplane-hf/token",
    ]  # fmt: skip
    assert container["env"] == [{"name": "HF_ENDPOINT", "value": "http://hub.local"}]
    assert {v["name"]: v for v in pod["volumes"]} == {
        "models": {"name": "models", "persistentVolumeClaim": {"claimName": CLAIM}},
        "token": {"name": "token", "secret": {
            "secretName": "modelcache-qwen-token",
            "items": [{"key": "HF_TOKEN", "path": "token"}]}},
    }  # fmt: skip


def test_the_token_copy_holds_the_one_key_and_the_job_may_patch_only_its_configmap() -> None:
    objects = {o["kind"]: o for o in decide(cache(), seen(remote={"east": ()}), T0).apply["east"]}
    assert objects["Secret"]["data"] == {"HF_TOKEN": base64.b64encode(b"hf_secret").decode()}
    assert objects["Secret"]["metadata"]["name"] == "modelcache-qwen-token"
    assert objects["Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"],
         "resourceNames": [objects["Job"]["metadata"]["name"]], "verbs": ["get", "patch"]}
    ]  # fmt: skip


def test_without_an_auth_secret_there_is_no_copy_and_no_token_file() -> None:
    plain = cache()
    del plain["spec"]["huggingFace"]["authSecret"]
    objects = decide(plain, seen(token=None, remote={"east": ()}), T0).apply["east"]
    assert "Secret" not in kinds(objects)
    assert "--token-file" not in objects[-1]["spec"]["template"]["spec"]["containers"][0]["args"]


def test_an_unreadable_auth_secret_fails_every_cluster_naming_the_field() -> None:
    why = "ModelCache ml/qwen spec.huggingFace.authSecret.name: Secret ml/hf-token not found"
    decision = decide(cache(), seen(token=None, token_problem=why, remote={}), T0)
    assert decision.apply == {}
    assert {c: (e["phase"], e["message"]) for c, e in entries(decision).items()} == {
        "east": ("Failed", why),
        "west": ("Failed", why),
    }


# --- a cluster without RWX storage ---------------------------------------------------------


def test_a_cluster_without_an_rwx_class_fails_naming_the_field_and_others_proceed() -> None:
    clusters = {"east": cluster("east", "us-east"), "west": cluster("west", "us-west", rwx=None)}
    decision = decide(cache(), seen(clusters=clusters, remote={"east": (), "west": ()}), T0)
    assert set(decision.apply) == {"east"}
    assert entries(decision)["west"] == {
        "clusterName": "west",
        "phase": "Failed",
        "message": "InferenceCluster west spec.cluster.existing.cache.storageClassName: not "
        "set, so the cluster has no ReadWriteMany StorageClass for ModelCache ml/qwen",
    }
    assert entries(decision)["east"]["phase"] == "Pending"


def test_gke_and_eks_clusters_use_their_fixed_classes() -> None:
    gke = {"spec": {"cluster": {"source": "GKE", "gke": {}}}}
    eks = {"spec": {"cluster": {"source": "EKS", "eks": {}}}}
    assert (rwx_class(gke), rwx_class(eks)) == ("enterprise-rwx", "efs-sc")


def test_a_cluster_that_is_not_ready_is_pending_and_untouched() -> None:
    clusters = {"east": cluster("east", "us-east", ready=False)}
    decision = decide(cache(), seen(clusters=clusters), T0)
    assert decision.apply == {}
    assert entries(decision)["east"]["phase"] == "Pending"
    assert entries(decision)["east"]["message"] == "InferenceCluster east is not Ready: down"


# --- status mirrored from the cluster -------------------------------------------------------


def test_a_claim_without_a_volume_is_pending_naming_the_claim_and_its_class() -> None:
    claim = obj("PersistentVolumeClaim", CLAIM, spec={"storageClassName": "shared-rwx"},
                status={"phase": "Pending"})  # fmt: skip
    decision = decide(cache(selector={"modelplane.ai/region": "us-east"}),
                      seen(remote={"east": (claim,)}), T0)  # fmt: skip
    assert entries(decision)["east"]["message"] == (
        "PersistentVolumeClaim ml/modelcache-qwen is Pending: shared-rwx has not provisioned "
        "a ReadWriteMany volume for it yet"
    )
    assert not decision.soon  # a claim waits for its volume at the resync, not every 2 s


def test_the_jobs_report_is_mirrored_with_bytes_and_commit() -> None:
    remote = (bound_claim(), obj("Job", job_name(cache())), progress("Hydrating", 300, 1200))
    decision = decide(cache(selector={"modelplane.ai/region": "us-east"}),
                      seen(remote={"east": remote}), T0)  # fmt: skip
    assert entries(decision)["east"] == {
        "clusterName": "east", "phase": "Hydrating",
        "message": "downloading: 300 of 1200 bytes (25%)",
        "bytesDone": 300, "bytesTotal": 1200, "commit": "c0ffee",
    }  # fmt: skip
    assert decision.status is not None
    assert decision.status["progress"] == "25%"
    assert ready_condition(decision)["status"] == "False"
    assert (
        ready_condition(decision)["message"] == "ModelCache ml/qwen: not staged on east Hydrating"
    )
    assert decision.soon  # mirrored every 2 s while the job runs


def test_every_footprint_cluster_ready_makes_the_cache_ready() -> None:
    remote = (bound_claim(), obj("Job", job_name(cache())), progress("Ready", 1200, 1200))
    decision = decide(cache(), seen(remote={"east": remote, "west": remote}), T0)
    assert decision.status is not None
    assert (decision.status["readyClusters"], decision.status["progress"]) == ("2/2", "100%")
    assert ready_condition(decision) == {
        "type": "Ready", "status": "True", "reason": "Staged",
        "message": "ModelCache ml/qwen: staged on east, west",
        "observedGeneration": 2, "lastTransitionTime": STAMP,
    }  # fmt: skip
    assert not decision.soon


def test_a_failed_report_is_mirrored_with_its_message() -> None:
    why = "spec.huggingFace.authSecret: the hub refused the token for Qwen/Qwen3-0.6B (HTTP 403)"
    remote = (bound_claim(), progress("Failed", 0, 0, why))
    decision = decide(cache(selector={"modelplane.ai/region": "us-east"}),
                      seen(remote={"east": remote}), T0)  # fmt: skip
    assert (entries(decision)["east"]["phase"], entries(decision)["east"]["message"]) == (
        "Failed",
        why,
    )


def test_a_job_that_failed_before_reporting_is_failed_with_its_condition() -> None:
    failed = obj("Job", job_name(cache()), status={"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]})  # fmt: skip
    decision = decide(cache(selector={"modelplane.ai/region": "us-east"}),
                      seen(remote={"east": (bound_claim(), failed)}), T0)  # fmt: skip
    assert entries(decision)["east"]["phase"] == "Failed"
    assert entries(decision)["east"]["message"] == (
        f"Job ml/{job_name(cache())} failed: Job has reached the specified backoff limit"
    )


def test_what_was_applied_is_not_applied_again_and_an_old_job_is_pruned() -> None:
    east = cache(selector={"modelplane.ai/region": "us-east"})
    first = decide(east, seen(remote={"east": ()}), T0)
    old = obj("Job", "modelcache-qwen-00000000")
    remote = (bound_claim(), obj("Job", job_name(east)), progress("Hydrating", 1, 2), old)
    again = decide(east, seen(remote={"east": remote}, applied=first.digests), T0)
    assert again.apply == {}
    assert again.delete == {"east": (("batch/v1", "Job", "ml", "modelcache-qwen-00000000"),)}


def test_a_claim_deleted_on_the_cluster_is_applied_again() -> None:
    east = cache(selector={"modelplane.ai/region": "us-east"})
    first = decide(east, seen(remote={"east": ()}), T0)
    remote = (obj("Job", job_name(east)), progress("Hydrating", 1, 2))
    assert set(decide(east, seen(remote={"east": remote}, applied=first.digests), T0).apply) == {
        "east"
    }


# --- narrowing the footprint ----------------------------------------------------------------

TEARDOWN_BY_NAME = (
    ("v1", "Secret", "ml", "modelcache-qwen-token"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "ml", "modelcache-qwen-hydrate"),
    ("rbac.authorization.k8s.io/v1", "Role", "ml", "modelcache-qwen-hydrate"),
    ("v1", "ServiceAccount", "ml", "modelcache-qwen-hydrate"),
    ("v1", "PersistentVolumeClaim", "ml", "modelcache-qwen"),
)
WAS_ON_BOTH = {"clusters": [
    {"clusterName": "east", "phase": "Ready", "message": "done"},
    {"clusterName": "west", "phase": "Ready", "message": "done"},
]}  # fmt: skip


def test_a_narrowed_selector_keeps_the_copy_while_a_replica_there_uses_it() -> None:
    east_only = cache(selector={"modelplane.ai/region": "us-east"}, status=WAS_ON_BOTH)
    remote = {"east": (bound_claim(),), "west": (bound_claim(),)}
    users = (replica("qwen-chat-west-0", "west"),)
    decision = decide(east_only, seen(remote=remote, users=users), T0)
    assert "west" not in decision.delete
    assert entries(decision)["west"]["message"] == (
        "outside spec.clusterSelector; kept while ModelReplica ml/qwen-chat-west-0 uses it"
    )
    assert decision.status is not None
    assert decision.status["readyClusters"] == "0/1"  # west no longer counts


def test_a_narrowed_selector_removes_an_unused_copy_then_drops_its_entry() -> None:
    east_only = cache(selector={"modelplane.ai/region": "us-east"}, status=WAS_ON_BOTH)
    job = obj("Job", job_name(east_only))
    decision = decide(east_only, seen(remote={"east": (), "west": (bound_claim(), job)}), T0)
    assert decision.delete["west"] == (
        ("batch/v1", "Job", "ml", job_name(east_only)),
        *TEARDOWN_BY_NAME,
    )
    gone = decide(east_only, seen(remote={"east": (), "west": ()}), T0)
    assert set(entries(gone)) == {"east"}


# --- deletion -------------------------------------------------------------------------------

DELETING: dict[str, Any] = {"deletionTimestamp": STAMP}


def test_deleting_a_used_cache_is_held_naming_the_deployment() -> None:
    decision = decide(
        cache(status=WAS_ON_BOTH, **DELETING),
        seen(remote={"east": (bound_claim(),)}, users=(replica("qwen-chat-east-0", "east"),)),
        T0,
    )
    assert not decision.release and decision.delete == {}
    assert ready_condition(decision)["reason"] == "InUse"
    assert ready_condition(decision)["message"] == (
        "ModelCache ml/qwen: deletion held: ModelDeployment ml/qwen-chat still uses it "
        "(ModelReplica ml/qwen-chat-east-0)"
    )


def test_deleting_an_unused_cache_removes_every_copy_then_releases() -> None:
    doomed = cache(status=WAS_ON_BOTH, **DELETING)
    decision = decide(doomed, seen(remote={"east": (bound_claim(),), "west": ()}), T0)
    assert decision.delete == {"east": TEARDOWN_BY_NAME}
    assert not decision.release
    released = decide(doomed, seen(remote={"east": (), "west": ()}), T0)
    assert released == Decision(release=True)


def test_a_deleted_cache_on_an_unreachable_cluster_waits() -> None:
    doomed = cache(status=WAS_ON_BOTH, **DELETING)
    assert not decide(doomed, seen(remote={"west": ()}), T0).release
