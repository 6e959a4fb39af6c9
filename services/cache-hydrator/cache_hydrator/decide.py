"""Everything cache-hydrator does for one ModelCache, decided from what it observed. Pure.

`decide(cache, observed, now)` returns a `Decision`; the controller only carries it out.

The footprint is every InferenceCluster (not being deleted) whose labels carry all of
`spec.clusterSelector.matchLabels` (every cluster when unset). Per footprint cluster:
- not Ready: its entry is Pending, nothing is applied there;
- no ReadWriteMany class (`rwx_class`): Failed, naming the cluster's
  `spec.cluster.existing.cache.storageClassName`; the other clusters proceed;
- a cache-wide problem (no `sizeGiB`, the `authSecret` missing or without its key): Failed;
- else `render.render` is applied when this process has not applied exactly that yet, or
  the cluster lost the claim, the Job or its ConfigMap; Jobs, ConfigMaps and pods of an
  earlier source are pruned; the entry mirrors the job's progress ConfigMap (phase, bytes,
  commit, message), else the Job's failure, else the claim waiting for a volume.
A cluster with a copy that left the footprint keeps it while a ModelReplica on that
cluster uses the cache, then its copy is deleted and its entry dropped once nothing is
left. The `Ready` condition is True when every footprint cluster is Ready.

A ModelCache being deleted is held (finalizer `FINALIZER`, condition Ready=False reason
`InUse` naming the deployments) while any ModelReplica uses it; then every copy is
deleted and the finalizer released once no cluster shows anything of it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from modelplane import conditions, naming
from modelplane.wellknown import Json

from cache_hydrator import render
from cache_hydrator.remote import Ref, entry, find, mirror, stale, teardown

FINALIZER = "modelplane.ai/cache-hydrator"
CLASS_FIELD = "spec.cluster.existing.cache.storageClassName"
FIXED_CLASSES = {"GKE": "enterprise-rwx", "EKS": "efs-sc"}
"""The RWX classes Modelplane provisions on the clusters it creates (Filestore, EFS)."""

# Reasons
STAGED = "Staged"
NOT_STAGED = "NotStaged"
IN_USE = "InUse"
DELETING = "Deleting"
NO_CLUSTERS = "NoClusters"


@dataclass(frozen=True, slots=True)
class Observed:
    """What the controller knows of one ModelCache.

    clusters: every InferenceCluster by name;
    job: the hydration jobs' image and hub;
    users: the ModelReplicas that reference the cache (its namespace, `spec.modelCacheRef`);
    token: the `authSecret` data to copy (None: no authSecret, or `token_problem`);
    token_problem: why the authSecret cannot be copied (names the field);
    remote: per cluster, its objects labelled as this cache's (None: not listed);
    applied: per cluster, the digest of what this process last applied there;
    apply_errors: per cluster, why the last apply there failed.
    """

    clusters: Mapping[str, Json]
    job: render.JobConfig
    users: tuple[Json, ...] = ()
    token: Mapping[str, str] | None = None
    token_problem: str | None = None
    remote: Mapping[str, tuple[Json, ...] | None] = field(default_factory=dict)
    applied: Mapping[str, str] = field(default_factory=dict)
    apply_errors: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do: add the finalizer; apply objects per cluster (and remember `digests`);
    delete refs per cluster, in order; write `status` (None: unchanged); release the
    finalizer; `soon`: look again in seconds even without an event."""

    add_finalizer: bool = False
    apply: Mapping[str, tuple[Json, ...]] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)
    delete: Mapping[str, tuple[Ref, ...]] = field(default_factory=dict)
    status: Json | None = None
    release: bool = False
    soon: bool = False


def rwx_class(cluster: Mapping[str, Any]) -> str | None:
    """The cluster's ReadWriteMany StorageClass: fixed for GKE and EKS, the admin's for
    Existing clusters (None when not set)."""
    source = (cluster.get("spec") or {}).get("cluster") or {}
    kind = source.get("source")
    if kind in FIXED_CLASSES:
        return FIXED_CLASSES[kind]
    return ((source.get("existing") or {}).get("cache") or {}).get("storageClassName") or None


def footprint(cache: Mapping[str, Any], clusters: Mapping[str, Json]) -> list[str]:
    wanted = ((cache.get("spec") or {}).get("clusterSelector") or {}).get("matchLabels") or {}
    return sorted(
        name
        for name, cluster in clusters.items()
        if not cluster["metadata"].get("deletionTimestamp")
        and all((cluster["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
    )


def digest(objects: tuple[Json, ...]) -> str:
    return hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()


def _cluster_ready(cluster: Mapping[str, Any]) -> tuple[bool, str]:
    for c in (cluster.get("status") or {}).get("conditions") or []:
        if c.get("type") == conditions.READY:
            return c.get("status") == "True", str(c.get("message") or "")
    return False, "no Ready condition yet"


def _users_on(users: tuple[Json, ...], cluster: str | None = None) -> list[str]:
    return sorted(
        f"ModelReplica {u['metadata']['namespace']}/{u['metadata']['name']}"
        for u in users
        if cluster is None or u["spec"].get("clusterName") == cluster
    )


def decide(cache: Mapping[str, Any], seen: Observed, now: datetime.datetime) -> Decision:
    """Everything to do for `cache` now (see the module docstring)."""
    meta = cache["metadata"]
    name = f"ModelCache {meta.get('namespace')}/{meta['name']}"
    generation = int(meta.get("generation") or 0)
    stamp = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    old_status = cache.get("status") or {}
    old_entries = {e["clusterName"]: e for e in old_status.get("clusters") or []}

    def made(status: conditions.Status, reason: str, message: str) -> dict[str, object]:
        return conditions.condition(conditions.READY, status, reason, message, generation, stamp)

    def write(entries: list[Json], ready: dict[str, object], inside: list[str]) -> Json | None:
        counted = [e for e in entries if e["clusterName"] in inside]
        done = sum(int(e.get("bytesDone") or 0) for e in counted)
        total = sum(int(e.get("bytesTotal") or 0) for e in counted)
        new: Json = {
            "conditions": conditions.merge(old_status.get("conditions") or [], [ready]),
            "observedGeneration": generation,
            "clusters": sorted(entries, key=lambda e: str(e["clusterName"])),
            "readyClusters": f"{sum(e['phase'] == 'Ready' for e in counted)}/{len(inside)}",
            "progress": f"{100 * done // total}%" if total else "",
        }
        return None if all(old_status.get(k) == v for k, v in new.items()) else new

    clusters = seen.clusters
    if meta.get("deletionTimestamp"):
        return _deleting(cache, seen, name, old_entries, made, write)

    todo = Decision(add_finalizer=FINALIZER not in (meta.get("finalizers") or []))
    inside = footprint(cache, clusters)
    source = (cache.get("spec") or {}).get("huggingFace") or {}
    problem = seen.token_problem
    if not source.get("sizeGiB"):
        problem = f"{name} spec.huggingFace.sizeGiB: not set; it sizes the volume on each cluster"
    entries: list[Json] = []
    apply: dict[str, tuple[Json, ...]] = {}
    digests: dict[str, str] = {}
    delete: dict[str, tuple[Ref, ...]] = {}
    soon = False
    for cluster in inside:
        up, why = _cluster_ready(clusters[cluster])
        storage = rwx_class(clusters[cluster])
        remote = seen.remote.get(cluster)
        if not up:
            entries.append(
                entry(cluster, "Pending", f"InferenceCluster {cluster} is not Ready: {why}")
            )
            continue
        if storage is None:
            entries.append(
                entry(
                    cluster,
                    "Failed",
                    f"InferenceCluster {cluster} {CLASS_FIELD}: not set, so the cluster has "
                    f"no ReadWriteMany StorageClass for {name}",
                )
            )
            continue
        if problem is not None:
            entries.append(entry(cluster, "Failed", problem))
            continue
        wanted = render.render(cache, storage, seen.job, seen.token)
        wanted_digest = digest(wanted)
        missing = remote is not None and any(
            find(remote, kind, obj_name) is None
            for kind, obj_name in (
                ("PersistentVolumeClaim", naming.cache_claim_name(meta["name"])),
                ("Job", render.job_name(cache)),
                ("ConfigMap", render.job_name(cache)),
            )
        )
        if seen.applied.get(cluster) != wanted_digest or missing:
            apply[cluster], digests[cluster] = wanted, wanted_digest
        if remote is None:
            entries.append(
                old_entries.get(cluster)
                or entry(cluster, "Pending", f"listing {name}'s objects on {cluster}")
            )
            continue
        old_runs = stale(cache, remote)
        if old_runs:
            delete[cluster] = old_runs
        state = mirror(cache, cluster, storage, remote)
        if cluster in seen.apply_errors:
            state = entry(
                cluster, "Pending", f"applying on {cluster}: {seen.apply_errors[cluster]}"
            )
        soon = soon or state["phase"] == "Hydrating"
        entries.append(state)

    for cluster, old in old_entries.items():
        if cluster in inside or cluster not in clusters:
            continue  # in the footprint, or the cluster is gone (nothing to remove)
        remote = seen.remote.get(cluster)
        if remote is not None and not remote:
            continue  # nothing left there: the entry goes
        users = _users_on(seen.users, cluster)
        if users:
            message = f"outside spec.clusterSelector; kept while {', '.join(users)} uses it"
        else:
            message = "outside spec.clusterSelector; removing the copy"
            if remote is not None:
                delete[cluster] = teardown(cache, remote)
            soon = True
        entries.append({**old, "message": message})

    states = {e["clusterName"]: e["phase"] for e in entries}
    if not inside:
        ready = made(
            "False", NO_CLUSTERS, f"{name}: no InferenceCluster matches spec.clusterSelector"
        )
    elif all(states.get(c) == "Ready" for c in inside):
        ready = made("True", STAGED, f"{name}: staged on {', '.join(inside)}")
    else:
        waiting = [f"{c} {states.get(c, 'Pending')}" for c in inside if states.get(c) != "Ready"]
        ready = made("False", NOT_STAGED, f"{name}: not staged on {', '.join(waiting)}")
    return replace(
        todo,
        apply=apply,
        digests=digests,
        delete=delete,
        status=write(entries, ready, inside),
        soon=soon,
    )


def _deleting(
    cache: Mapping[str, Any],
    seen: Observed,
    name: str,
    old_entries: Mapping[str, Json],
    made: Any,
    write: Any,
) -> Decision:
    inside = footprint(cache, seen.clusters)
    entries = list(old_entries.values())
    if seen.users:
        deployments = sorted(
            {
                f"ModelDeployment {u['metadata']['namespace']}/{u['spec'].get('deploymentName')}"
                for u in seen.users
            }
        )
        users = ", ".join(_users_on(seen.users))
        why = f"{name}: deletion held: {', '.join(deployments)} still uses it ({users})"
        return Decision(status=write(entries, made("False", IN_USE, why), inside), soon=True)
    if FINALIZER not in (cache["metadata"].get("finalizers") or []):
        return Decision()
    delete: dict[str, tuple[Ref, ...]] = {}
    waiting = []
    for cluster in sorted(set(old_entries) | set(inside)):
        if cluster not in seen.clusters:
            continue  # gone: nothing can be removed there
        remote = seen.remote.get(cluster)
        if remote is None or remote:
            waiting.append(cluster)
            if remote is not None:
                delete[cluster] = teardown(cache, remote)
    if not waiting:
        return Decision(release=True)
    why = f"{name}: deleting its copies on {', '.join(waiting)}"
    return Decision(
        delete=delete, status=write(entries, made("False", DELETING, why), inside), soon=True
    )
