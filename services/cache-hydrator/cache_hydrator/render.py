"""The objects one ModelCache needs on one inference cluster, rendered from the cache alone. Pure.

`render(cache, storage_class, job)` returns, in apply order (teardown goes the other way),
all in the cache's namespace and labelled `labels(cache)`:

1. the Namespace (shared, only the managed-by label, never torn down);
2. the PersistentVolumeClaim `naming.cache_claim_name(name)`: `ReadWriteMany` on the
   cluster's RWX class, `spec.huggingFace.sizeGiB` GiB;
3. the copy of `spec.huggingFace.authSecret` (when set): the control cluster's Secret
   data under the same key, named `<claim>-token`;
4. the progress ConfigMap the job reports into, and the ServiceAccount, Role and
   RoleBinding that let the job's pod `get` and `patch` that one ConfigMap and nothing else;
5. the hydration Job running `modelplane-hydrate` from `job.image` on the claim mounted at
   `/mnt/models`, the token file from the copy, `HF_ENDPOINT` from `job.hub_endpoint`.

The Job and its ConfigMap are named after a hash of what the run fetches (repo, revision,
size): a Job's pod template cannot change, so a changed source makes a new Job (the old
one is pruned). The Job fails at once on exit status 1 (the job's own Failed, whose
message the ConfigMap holds) and is retried `RETRIES` times when its pod is killed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelplane import naming
from modelplane.wellknown import MANAGED_BY, Json

MANAGER = "modelplane-cache-hydrator"
PROGRESS_KEY = "status.json"
"""The ConfigMap key holding the job's status file (`cache_hydrator.progress.Status`)."""
TOKEN_FILE_KEY = "token"
TOKEN_DIR = "/var/run/secrets/modelplane-hf"
RETRIES = 3
RBAC_API = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True, slots=True)
class JobConfig:
    """How the controller runs hydration jobs: the image holding `modelplane-hydrate`
    and the hub it fetches from (`HF_ENDPOINT`)."""

    image: str
    hub_endpoint: str


def labels(cache: Mapping[str, Any]) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, naming.CACHE_LABEL: naming.shorten(cache["metadata"]["name"])}


def token_secret_name(cache: str) -> str:
    return naming.shorten(f"{naming.cache_claim_name(cache)}-token")


def account_name(cache: str) -> str:
    """The ServiceAccount, Role and RoleBinding of the cache's jobs."""
    return naming.shorten(f"{naming.cache_claim_name(cache)}-hydrate")


def job_name(cache: Mapping[str, Any]) -> str:
    """`<claim>-<hash of repo, revision and size>`: a new source, a new Job."""
    source = (cache.get("spec") or {}).get("huggingFace") or {}
    what = json.dumps([source.get("repo"), source.get("revision"), source.get("sizeGiB")])
    digest = hashlib.sha256(what.encode()).hexdigest()[:8]
    return f"{naming.cache_claim_name(cache['metadata']['name'])[:54]}-{digest}"


def render(
    cache: Mapping[str, Any], storage_class: str, job: JobConfig, token: Mapping[str, str] | None
) -> tuple[Json, ...]:
    """Every object of `cache` on one cluster, in apply order (see the module docstring).

    `token`: the Secret data to copy (`{key: base64 value}`), None when the cache has no
    `authSecret`."""
    meta = cache["metadata"]
    name, namespace = meta["name"], meta.get("namespace") or "default"
    source = cache["spec"]["huggingFace"]
    own = labels(cache)

    def object_meta(object_name: str) -> Json:
        return {"name": object_name, "namespace": namespace, "labels": dict(own)}

    claim = naming.cache_claim_name(name)
    account = account_name(name)
    run = job_name(cache)
    objects: list[Json] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {MANAGED_BY: MANAGER}},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": object_meta(claim),
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": storage_class,
                "resources": {"requests": {"storage": f"{int(source['sizeGiB'])}Gi"}},
            },
        },
    ]
    if token is not None:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": object_meta(token_secret_name(name)),
                "type": "Opaque",
                "data": dict(token),
            }
        )
    objects += [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": object_meta(run), "data": {}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": object_meta(account)},
        {
            "apiVersion": RBAC_API,
            "kind": "Role",
            "metadata": object_meta(account),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [run],
                    "verbs": ["get", "patch"],
                }
            ],
        },
        {
            "apiVersion": RBAC_API,
            "kind": "RoleBinding",
            "metadata": object_meta(account),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
        _job(cache, object_meta(run), claim, account, job, token),
    ]
    return tuple(objects)


def _job(
    cache: Mapping[str, Any],
    meta: Json,
    claim: str,
    account: str,
    job: JobConfig,
    token: Mapping[str, str] | None,
) -> Json:
    source = cache["spec"]["huggingFace"]
    args = ["--repo", str(source["repo"])]
    if source.get("revision"):
        args += ["--revision", str(source["revision"])]
    args += ["--dir", naming.CACHE_MOUNT_PATH, "--size-gib", str(int(source["sizeGiB"]))]
    args += ["--report-configmap", meta["name"]]
    mounts: list[Json] = [{"name": "models", "mountPath": naming.CACHE_MOUNT_PATH}]
    volumes: list[Json] = [{"name": "models", "persistentVolumeClaim": {"claimName": claim}}]
    if token is not None:
        key = (source.get("authSecret") or {}).get("key") or "HF_TOKEN"
        args += ["--token-file", f"{TOKEN_DIR}/{TOKEN_FILE_KEY}"]
        mounts.append({"name": "token", "mountPath": TOKEN_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "token",
                "secret": {
                    "secretName": token_secret_name(cache["metadata"]["name"]),
                    "items": [{"key": key, "path": TOKEN_FILE_KEY}],
                },
            }
        )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": RETRIES,
            "podFailurePolicy": {
                "rules": [
                    # exit 1: the job's own Failed (its message is in the ConfigMap);
                    # 2: a command-line error. Neither gets better by running again.
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "hydrate",
                            "operator": "In",
                            "values": [1, 2],
                        },
                    }
                ]
            },
            "template": {
                "metadata": {"labels": dict(meta["labels"])},
                "spec": {
                    "serviceAccountName": account,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "hydrate",
                            "image": job.image,
                            "command": ["modelplane-hydrate"],
                            "args": args,
                            "env": [{"name": "HF_ENDPOINT", "value": job.hub_endpoint}],
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }
