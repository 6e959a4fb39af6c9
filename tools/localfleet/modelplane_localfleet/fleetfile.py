"""Reads FLEET.yaml: which inference clusters the local fleet runs.

The file (or folder) holds InferenceClass and InferenceCluster manifests, as a
platform team would apply them. Each valid InferenceCluster becomes one local
cluster of the same name; one whose source is `Existing` also names the Secret
(and key) where `up` stores its kubeconfig. Invalid InferenceClusters and
InferenceClasses are errors that name the file, the document, the object and the
field; objects of other kinds are ignored, so a whole fleet folder can be passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelplane.api.manifests import load_manifests
from modelplane.api.types import InferenceCluster

from modelplane_localfleet.layout import Secret

FLEET_KINDS = ("InferenceClass", "InferenceCluster")


class FleetFileError(ValueError):
    """FLEET.yaml cannot be used; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    """An inference cluster to run: its name and, for source Existing, its kubeconfig Secret."""

    name: str
    source: str
    secret: Secret | None


def read(paths: Iterable[str | Path]) -> list[ClusterEntry]:
    problems: list[str] = []
    entries: dict[str, ClusterEntry] = {}
    for document in load_manifests(list(paths)):
        kind = document.raw.get("kind") if document.raw else None
        if document.foreign or kind not in FLEET_KINDS:
            continue
        if not document.ok:
            problems += [f"{document.source}: {error}" for error in document.errors]
            continue
        obj = document.obj
        if not isinstance(obj, InferenceCluster):
            continue
        name = obj.metadata.name or ""
        if name in entries:
            problems.append(f"{document.source}: InferenceCluster/{name} is defined twice")
            continue
        existing = obj.spec.cluster.existing
        secret = Secret(existing.secret_ref.name, existing.secret_ref.key) if existing else None
        entries[name] = ClusterEntry(name, obj.spec.cluster.source, secret)
    if problems:
        raise FleetFileError("\n".join(problems))
    return list(entries.values())
