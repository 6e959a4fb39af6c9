"""Which kube-scheduler places a replica's pods on its cluster (pure).

`scheduler_name(cluster, remote)` is `modelplane` (the second kube-scheduler that
runs with the scheduler extender, which packs GPU claims) when the replica's
InferenceCluster reports the extension `Healthy` (`status.schedulerExtension`,
written by cluster-provisioner) at the time its workloads are created, else None
(the cluster's default scheduler). The choice is sticky: once a workload of the
replica exists on the cluster (`remote`, from the watch cache), its pod template's
`schedulerName` is kept whatever the extension's health is now, so a flapping
extension never rolls a replica's pods. Right after a restart, before that cache
has synced (`remote` None), the choice follows the cluster's health.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelplane.wellknown import SCHEDULER_NAME

from endpoint_manager.workload import WORKLOAD_KINDS

Json = Mapping[str, Any]


def _templates(workload: Json) -> Iterable[Json]:
    spec = workload.get("spec") or {}
    if "template" in spec:  # a Deployment
        yield spec["template"] or {}
    group = spec.get("leaderWorkerTemplate") or {}  # a LeaderWorkerSet
    for key in ("leaderTemplate", "workerTemplate"):
        if group.get(key):
            yield group[key]


def scheduler_name(cluster: Json | None, remote: Iterable[Json] | None) -> str | None:
    """`modelplane` or None (the default scheduler) for the replica's pods (see above)."""
    for obj in remote or ():
        if (obj.get("apiVersion"), obj.get("kind")) in WORKLOAD_KINDS:
            names = {(t.get("spec") or {}).get("schedulerName") for t in _templates(obj)}
            return SCHEDULER_NAME if SCHEDULER_NAME in names else None
    extension = ((cluster or {}).get("status") or {}).get("schedulerExtension") or {}
    return SCHEDULER_NAME if extension.get("health") == "Healthy" else None
