"""A ModelCache's objects on one cluster, as cache-hydrator lists them: the cluster's entry
in `status.clusters[]`, what to prune and what to tear down. Pure.

`mirror` reads the job's report from its ConfigMap (phase, bytes, commit, message), else
the Job's failure, else the claim waiting for its volume, else the Job not started yet.
`stale` names the Jobs, ConfigMaps and pods of an earlier source; `teardown` everything
of the cache there, in deletion order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from modelplane import naming
from modelplane.wellknown import Json

from cache_hydrator import render

Ref = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name) of an object on an inference cluster."""


def entry(cluster: str, phase: str, message: str, **extra: object) -> Json:
    return {"clusterName": cluster, "phase": phase, "message": message, **extra}


def _refs(objects: list[Json]) -> tuple[Ref, ...]:
    return tuple(
        (o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in objects
        if not o["metadata"].get("deletionTimestamp")
    )


def teardown(cache: Mapping[str, Any], remote: tuple[Json, ...]) -> tuple[Ref, ...]:
    """Everything of `cache` on a cluster, in teardown order: Jobs and their pods, the
    ConfigMaps, the token copy and the job's identity (by name, never listed), the claim."""
    meta = cache["metadata"]
    namespace, name = meta.get("namespace") or "default", meta["name"]
    seen = [o for k in ("Job", "Pod", "ConfigMap") for o in remote if o.get("kind") == k]
    account = render.account_name(name)
    by_name: tuple[Ref, ...] = (
        ("v1", "Secret", namespace, render.token_secret_name(name)),
        (render.RBAC_API, "RoleBinding", namespace, account),
        (render.RBAC_API, "Role", namespace, account),
        ("v1", "ServiceAccount", namespace, account),
        ("v1", "PersistentVolumeClaim", namespace, naming.cache_claim_name(name)),
    )
    return _refs(seen) + by_name


def stale(cache: Mapping[str, Any], remote: tuple[Json, ...]) -> tuple[Ref, ...]:
    """Jobs, ConfigMaps and pods of an earlier source (another Job name)."""
    current = render.job_name(cache)
    old = [
        o
        for o in remote
        if (o.get("kind") in ("Job", "ConfigMap") and o["metadata"]["name"] != current)
        or (
            o.get("kind") == "Pod"
            and (o["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name")
            not in (None, current)
        )
    ]
    return _refs(old)


def find(remote: tuple[Json, ...], kind: str, name: str) -> Json | None:
    return next(
        (o for o in remote if o.get("kind") == kind and o["metadata"]["name"] == name), None
    )


def mirror(cache: Mapping[str, Any], cluster: str, storage: str, remote: tuple[Json, ...]) -> Json:
    """The cluster's entry from what is there: the job's report, else the Job's failure,
    else the claim waiting for its volume, else the Job not started yet."""
    meta = cache["metadata"]
    namespace = meta.get("namespace") or "default"
    run = render.job_name(cache)
    config = find(remote, "ConfigMap", run) or {}
    text = (config.get("data") or {}).get(render.PROGRESS_KEY)
    job = find(remote, "Job", run)
    failed = [
        c
        for c in ((job or {}).get("status") or {}).get("conditions") or []
        if c.get("type") == "Failed" and c.get("status") == "True"
    ]
    if text:
        try:
            report = json.loads(text)
        except ValueError:
            report = {}
        phase = (
            report.get("phase") if report.get("phase") in ("Hydrating", "Ready", "Failed") else None
        )
        if phase is not None:
            message = str(report.get("message") or "")
            if phase == "Hydrating" and failed:
                phase, message = "Failed", f"Job {namespace}/{run}: {failed[0].get('message')}"
            return entry(
                cluster,
                phase,
                message or _progress_line(report),
                bytesDone=int(report.get("bytesDone") or 0),
                bytesTotal=int(report.get("bytesTotal") or 0),
                commit=str(report.get("commit") or ""),
            )
    if failed:
        why = failed[0].get("message") or failed[0].get("reason")
        return entry(cluster, "Failed", f"Job {namespace}/{run} failed: {why}")
    claim = naming.cache_claim_name(meta["name"])
    volume = find(remote, "PersistentVolumeClaim", claim)
    if volume is None or (volume.get("status") or {}).get("phase") != "Bound":
        return entry(
            cluster,
            "Pending",
            f"PersistentVolumeClaim {namespace}/{claim} is Pending: {storage} has not "
            "provisioned a ReadWriteMany volume for it yet",
        )
    return entry(cluster, "Pending", f"Job {namespace}/{run} has not reported progress yet")


def _progress_line(report: Mapping[str, Any]) -> str:
    done, total = int(report.get("bytesDone") or 0), int(report.get("bytesTotal") or 0)
    share = f" ({100 * done // total}%)" if total else ""
    return f"{report.get('step') or 'hydrating'}: {done} of {total} bytes{share}"
