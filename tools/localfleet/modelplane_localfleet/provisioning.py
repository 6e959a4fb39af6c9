"""The harness's RWX provisioner, its decision (pure): which volumes to create and delete.

The local fleet's inference clusters have one ReadWriteMany StorageClass,
`modelplane-rwx`, whose provisioner is this harness's own (`PROVISIONER`); every node
of the fleet shares one file system, so a directory is a volume every pod on every
node can mount. `decide` takes what the provisioner watches (claims, volumes,
classes) and the folder its volumes live in, and returns what to do:

- `Create` for each claim of one of our classes that has no volume yet (not bound,
  not being deleted, no volume of ours already naming it): a `hostPath` volume
  `pvc-<claim uid>` in a directory of its own under the root, pre-bound to the claim
  (`claimRef` with its uid), with the claim's access modes (ReadWriteMany honoured:
  nothing here restricts it), its requested size, the class's reclaim policy and
  mount options. kube-controller-manager's volume binder then binds the two, as it
  does for any external provisioner's volume.
- `Refuse` for a claim asking what a directory cannot give (a block device, a
  selector, a data source, no requested size): its message names the claim and the field.
- `Delete` for each volume of ours released by its claim (phase Released or Failed)
  whose policy is `Delete`: its directory and the object go; `Retain` keeps both.

A directory outside the root is never deleted, whatever a volume says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]
PROVISIONER = "localfleet.modelplane.ai/rwx"
STORAGE_CLASS = "modelplane-rwx"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
RELEASED = ("Released", "Failed")


@dataclass(frozen=True, slots=True)
class Create:
    """Make `directory` and create `volume` (a PersistentVolume) for the claim it names."""

    volume: Json
    directory: Path


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the released volume `name` and its `directory`."""

    name: str
    directory: Path


@dataclass(frozen=True, slots=True)
class Refuse:
    """The claim cannot be provisioned; `message` names the claim and the field."""

    namespace: str
    claim: str
    message: str


Action = Create | Delete | Refuse


def storage_class(reclaim_policy: str = "Delete") -> Json:
    """The fleet's RWX StorageClass (bound at once: any node reaches any directory)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS},
        "provisioner": PROVISIONER,
        "reclaimPolicy": reclaim_policy,
        "volumeBindingMode": "Immediate",
    }


def volume_name(claim: Mapping[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def _ours(volume: Mapping[str, Any]) -> bool:
    annotations = volume["metadata"].get("annotations") or {}
    return annotations.get(PROVISIONED_BY) == PROVISIONER


def _problem(claim: Mapping[str, Any]) -> str | None:
    """What keeps the claim from a directory volume, naming the field; None when nothing."""
    meta, spec = claim["metadata"], claim.get("spec") or {}
    where = f"PersistentVolumeClaim {meta.get('namespace')}/{meta['name']}"
    if spec.get("volumeMode", "Filesystem") != "Filesystem":
        return f"{where} spec.volumeMode: {STORAGE_CLASS} provisions directories (Filesystem) only"
    if spec.get("selector"):
        return f"{where} spec.selector: a dynamically provisioned claim cannot select volumes"
    if spec.get("dataSource") or spec.get("dataSourceRef"):
        return f"{where} spec.dataSource: {STORAGE_CLASS} cannot fill a volume from a source"
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        return f"{where} spec.resources.requests.storage: a size is required"
    return None


def persistent_volume(claim: Mapping[str, Any], klass: Mapping[str, Any], root: Path) -> Json:
    """The volume that answers `claim` of class `klass`, in a directory under `root`."""
    meta, spec = claim["metadata"], claim["spec"]
    name = volume_name(claim)
    volume: Json = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": klass.get("reclaimPolicy") or "Delete",
            "storageClassName": klass["metadata"]["name"],
            "volumeMode": "Filesystem",
            "hostPath": {"path": str(root / name), "type": "Directory"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
    if klass.get("mountOptions"):
        volume["spec"]["mountOptions"] = list(klass["mountOptions"])
    return volume


def _directory(volume: Mapping[str, Any]) -> Path | None:
    path = ((volume.get("spec") or {}).get("hostPath") or {}).get("path")
    return Path(os.path.normpath(path)) if path else None


def decide(
    claims: Iterable[Mapping[str, Any]],
    volumes: Iterable[Mapping[str, Any]],
    classes: Iterable[Mapping[str, Any]],
    root: Path,
) -> list[Action]:
    """What to create, refuse and delete so every claim of our classes has a volume."""
    ours = {c["metadata"]["name"]: c for c in classes if c.get("provisioner") == PROVISIONER}
    volumes = list(volumes)
    claimed = {
        ((v.get("spec") or {}).get("claimRef") or {}).get("uid") for v in volumes if _ours(v)
    }
    actions: list[Action] = []
    for claim in claims:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        klass = ours.get(spec.get("storageClassName") or "")
        if klass is None or spec.get("volumeName") or meta.get("deletionTimestamp"):
            continue
        if meta.get("uid") in claimed:
            continue
        problem = _problem(claim)
        if problem is not None:
            actions.append(Refuse(meta["namespace"], meta["name"], problem))
            continue
        actions.append(Create(persistent_volume(claim, klass, root), root / volume_name(claim)))
    for volume in volumes:
        spec = volume.get("spec") or {}
        phase = (volume.get("status") or {}).get("phase")
        if not _ours(volume) or phase not in RELEASED:
            continue
        if spec.get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
            continue
        directory = _directory(volume)
        if directory is None or not directory.is_relative_to(root) or directory == root:
            continue
        actions.append(Delete(volume["metadata"]["name"], directory))
    return actions
