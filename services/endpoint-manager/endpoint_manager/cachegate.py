"""Whether a replica's ModelCache is staged on its cluster: the `CacheReady` condition. Pure.

A replica with `spec.modelCacheRef` mounts the cache's claim (`naming.cache_claim_name`)
at `/mnt/models`; endpoint-manager renders it only once the ModelCache's entry for the
replica's cluster in `status.clusters[]` (cache-hydrator's) is Ready. Until then
`CacheReady` is False with the cache's phase and progress there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CACHE_READY = "CacheReady"
# Reasons
CACHE_STAGED = "CacheStaged"
CACHE_NOT_READY = "CacheNotReady"
CACHE_NOT_FOUND = "CacheNotFound"


@dataclass(frozen=True, slots=True)
class Gate:
    """ready: the cache is Ready on the replica's cluster; reason and message say why."""

    ready: bool
    reason: str
    message: str


def cache_name(replica: Mapping[str, Any]) -> str | None:
    ref = (replica.get("spec") or {}).get("modelCacheRef") or {}
    return str(ref["name"]) if ref.get("name") else None


def check(replica: Mapping[str, Any], cache: Mapping[str, Any] | None) -> Gate | None:
    """The gate of `replica` given its ModelCache as observed (None: not found); None when
    the replica uses no cache."""
    name = cache_name(replica)
    if name is None:
        return None
    meta, cluster = replica["metadata"], replica["spec"]["clusterName"]
    who = f"ModelReplica {meta['namespace']}/{meta['name']}"
    what = f"ModelCache {meta['namespace']}/{name}"
    if cache is None:
        return Gate(False, CACHE_NOT_FOUND, f"{who} spec.modelCacheRef.name: {what} not found")
    entries = (cache.get("status") or {}).get("clusters") or []
    entry = next((e for e in entries if e.get("clusterName") == cluster), None)
    if entry is None:
        return Gate(False, CACHE_NOT_READY, f"{who}: {what} has no copy on {cluster} yet")
    if entry.get("phase") == "Ready":
        commit = f" (commit {entry['commit']})" if entry.get("commit") else ""
        return Gate(True, CACHE_STAGED, f"{who}: {what} is Ready on {cluster}{commit}")
    done, total = int(entry.get("bytesDone") or 0), int(entry.get("bytesTotal") or 0)
    share = f", {done} of {total} bytes ({100 * done // total}%)" if total else ""
    why = f": {entry['message']}" if entry.get("message") else ""
    return Gate(
        False,
        CACHE_NOT_READY,
        f"{who}: waiting for {what} on {cluster}: {entry.get('phase') or 'Pending'}{share}{why}",
    )
