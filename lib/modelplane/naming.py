"""Names of composed objects, derived from their owner so reconciles never duplicate.

Every function here is deterministic: the same owner gives the same name on
every run and every copy of a service. Names longer than a Kubernetes object
name allows are shortened with a stable hash suffix.
"""

from __future__ import annotations

import hashlib

DNS_LABEL_MAX = 63

DEPLOYMENT_LABEL = "modelplane.ai/deployment"
CLUSTER_LABEL = "modelplane.ai/cluster"
REPLICA_INDEX_LABEL = "modelplane.ai/replica-index"
POOL_LABEL = "modelplane.ai/pool"
CACHE_LABEL = "modelplane.ai/cache"
"""On every object cache-hydrator makes on an inference cluster: the ModelCache's name."""
CACHE_MOUNT_PATH = "/mnt/models"
"""Where a ModelCache's volume is mounted in every pod that uses it."""


def shorten(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """`name` itself when short enough, else a prefix plus an 8-character hash of the whole."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-.')}-{digest}"


def replica_name(deployment: str, cluster: str, index: int) -> str:
    """The ModelReplica name of replica `index` of `deployment` on `cluster`.

    `<deployment>-<cluster>-<index>`, shortened with a hash when too long.
    """
    return shorten(f"{deployment}-{cluster}-{index}")


def deployment_selector(deployment: str) -> str:
    """The serialized label selector of a deployment's replicas (for the scale subresource)."""
    return f"{DEPLOYMENT_LABEL}={deployment}"


def cache_claim_name(cache: str) -> str:
    """The PersistentVolumeClaim that holds ModelCache `cache` on every cluster it stages to
    (in the cache's namespace there): cache-hydrator makes it, endpoint-manager mounts it."""
    return shorten(f"modelcache-{cache}")
