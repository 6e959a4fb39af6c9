"""The harness's RWX provisioner decides: volumes for new claims, refusals, deletions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelplane_localfleet.provisioning import Create, Delete, Refuse, decide, storage_class

ROOT = Path("/state/storage/east")
RWX = storage_class()
OTHER = {"metadata": {"name": "standard"}, "provisioner": "rancher.io/local-path"}


def _claim(name: str, uid: str, klass: str = "modelplane-rwx", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "models", "uid": uid},
        "spec": {
            "storageClassName": klass,
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "5Gi"}},
            **spec,
        },
    }


def _volume(name: str, uid: str, phase: str, policy: str = "Delete", path: str = "") -> Any:
    return {
        "metadata": {
            "name": name,
            "annotations": {"pv.kubernetes.io/provisioned-by": "localfleet.modelplane.ai/rwx"},
        },
        "spec": {
            "claimRef": {"uid": uid},
            "persistentVolumeReclaimPolicy": policy,
            "hostPath": {"path": path or f"{ROOT}/{name}"},
        },
        "status": {"phase": phase},
    }


def test_a_new_claim_of_the_class_gets_a_pre_bound_directory_volume() -> None:
    actions = decide([_claim("weights", "u1")], [], [RWX, OTHER], ROOT)
    assert actions == [
        Create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": "pvc-u1",
                    "annotations": {
                        "pv.kubernetes.io/provisioned-by": "localfleet.modelplane.ai/rwx"
                    },
                },
                "spec": {
                    "capacity": {"storage": "5Gi"},
                    "accessModes": ["ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": "modelplane-rwx",
                    "volumeMode": "Filesystem",
                    "hostPath": {"path": "/state/storage/east/pvc-u1", "type": "Directory"},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": "models",
                        "name": "weights",
                        "uid": "u1",
                    },
                },
            },
            Path("/state/storage/east/pvc-u1"),
        )
    ]


def test_claims_of_other_classes_bound_or_already_provisioned_are_left_alone() -> None:
    claims = [
        _claim("elsewhere", "u1", klass="standard"),
        _claim("no-class", "u2", klass=""),
        _claim("bound", "u3", volumeName="pvc-u3"),
        _claim("provisioned", "u4"),
    ]
    volumes = [_volume("pvc-u4", "u4", "Available")]
    assert decide(claims, volumes, [RWX, OTHER], ROOT) == []


def test_the_class_reclaim_policy_and_mount_options_carry_over() -> None:
    retain = {**storage_class("Retain"), "mountOptions": ["noatime"]}
    [action] = decide([_claim("keep", "u1")], [], [retain], ROOT)
    assert isinstance(action, Create)
    assert action.volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert action.volume["spec"]["mountOptions"] == ["noatime"]


def test_claims_a_directory_cannot_answer_are_refused_naming_the_field() -> None:
    claims = [
        _claim("block", "u1", volumeMode="Block"),
        _claim("picky", "u2", selector={"matchLabels": {"a": "b"}}),
        _claim("cloned", "u3", dataSource={"kind": "PersistentVolumeClaim", "name": "x"}),
        _claim("sizeless", "u4", resources={}),
    ]
    actions = decide(claims, [], [RWX], ROOT)
    assert [(a.claim, a.message.split(": ")[0]) for a in actions if isinstance(a, Refuse)] == [
        ("block", "PersistentVolumeClaim models/block spec.volumeMode"),
        ("picky", "PersistentVolumeClaim models/picky spec.selector"),
        ("cloned", "PersistentVolumeClaim models/cloned spec.dataSource"),
        ("sizeless", "PersistentVolumeClaim models/sizeless spec.resources.requests.storage"),
    ]
    assert len(actions) == 4


def test_released_volumes_of_ours_with_policy_delete_are_deleted_and_no_others() -> None:
    foreign = _volume("pv-foreign", "f", "Released")
    foreign["metadata"]["annotations"] = {}
    volumes = [
        _volume("pvc-a", "a", "Released"),
        _volume("pvc-b", "b", "Failed"),
        _volume("pvc-c", "c", "Bound"),
        _volume("pvc-d", "d", "Released", policy="Retain"),
        _volume("pvc-e", "e", "Released", path="/etc"),
        _volume("pvc-f", "f", "Released", path=f"{ROOT}/../../etc"),
        foreign,
    ]
    assert decide([], volumes, [RWX], ROOT) == [
        Delete("pvc-a", ROOT / "pvc-a"),
        Delete("pvc-b", ROOT / "pvc-b"),
    ]
