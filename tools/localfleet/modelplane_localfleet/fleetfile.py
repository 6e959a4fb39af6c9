"""Reads FLEET.yaml: which inference clusters the local fleet runs.

The file (or folder) holds InferenceClass and InferenceCluster manifests, as a
platform team would apply them. Each valid InferenceCluster becomes one local
cluster of the same name, whose node agent simulates its pools with the devices
of their classes (a pool whose class is not in the files is an error); one whose
source is `Existing` also names the Secret (and key) where `up` stores its
kubeconfig. Invalid InferenceClusters and
InferenceClasses are errors that name the file, the document, the object and the
field; objects of other kinds are ignored, so a whole fleet folder can be passed.
A pool may not be named `system` (each local cluster's system node has that name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplane.api.manifests import Source, load_manifests

from modelplane_localfleet.layout import Secret
from modelplane_localfleet.nodeagent.config import ClassDevice, PoolHardware

FLEET_KINDS = ("InferenceClass", "InferenceCluster")
SYSTEM_POOL_NAME = "system"
"""Every local cluster's system node is `<cluster>-system-0`: no fleet-file pool takes it."""


class FleetFileError(ValueError):
    """FLEET.yaml cannot be used; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    """An inference cluster to run: its name and, for source Existing, its kubeconfig Secret."""

    name: str
    source: str
    secret: Secret | None
    pools: tuple[PoolHardware, ...] = ()


def read(paths: Iterable[str | Path]) -> list[ClusterEntry]:
    problems: list[str] = []
    entries: dict[str, ClusterEntry] = {}
    classes: dict[str, dict[str, Any]] = {}
    clusters: list[tuple[Source, dict[str, Any]]] = []
    for document in load_manifests(list(paths)):
        kind = document.raw.get("kind") if document.raw else None
        if document.foreign or kind not in FLEET_KINDS:
            continue
        if not document.ok:
            problems += [f"{document.source}: {error}" for error in document.errors]
            continue
        obj = document.obj or {}
        if kind == "InferenceClass":
            classes[obj["metadata"].get("name") or ""] = obj
        else:
            clusters.append((document.source, obj))
    for source, obj in clusters:
        name = obj["metadata"].get("name") or ""
        spec = obj["spec"]
        if name in entries:
            problems.append(f"{source}: InferenceCluster/{name} is defined twice")
            continue
        pools = []
        for i, pool in enumerate(spec.get("nodePools") or ()):
            found = classes.get(pool["className"])
            if pool["name"] == SYSTEM_POOL_NAME:
                problems.append(
                    f"{source}: InferenceCluster/{name} spec.nodePools[{i}].name: "
                    f"{SYSTEM_POOL_NAME!r} is the local fleet's system node; name the pool else"
                )
                continue
            if found is None:
                problems.append(
                    f"{source}: InferenceCluster/{name} spec.nodePools[{i}].className: "
                    f"InferenceClass {pool['className']!r} is not in the fleet files"
                )
                continue
            devices = tuple(map(ClassDevice.from_dict, found["spec"].get("devices") or ()))
            pools.append(PoolHardware(pool["name"], pool["className"], pool["nodeCount"], devices))
        existing = spec["cluster"].get("existing")
        ref = existing["secretRef"] if existing else {}
        secret = Secret(ref["name"], ref["key"]) if existing else None
        entries[name] = ClusterEntry(name, spec["cluster"]["source"], secret, tuple(pools))
    if problems:
        raise FleetFileError("\n".join(problems))
    return list(entries.values())
