"""Pod volumes as kubelet makes them: payloads, modes, problems named by field, atomic updates."""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
from pathlib import Path
from typing import Any

from modelplane_localfleet.nodeagent import volumes
from modelplane_localfleet.nodeagent.env import PodFacts
from modelplane_localfleet.nodeagent.tokens import TokenKey
from modelplane_localfleet.nodeagent.volumes import File, Sources, VolumeMount

FACTS = PodFacts(pod_ip="10.244.0.5", host_ip="10.244.0.1", node_name="control-system-0")
NOW = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# What the API server's ServiceAccount admission adds to every pod.
KUBE_API_ACCESS = {
    "name": "kube-api-access-x1",
    "projected": {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                    ]
                }
            },
        ],
    },
}


def _pod(volumes_: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None) -> Any:
    return {
        "metadata": {
            "name": "api-0",
            "namespace": "modelplane-system",
            "uid": "0123456789ab",
            "labels": {"app": "api", "tier": "control"},
        },
        "spec": {
            "serviceAccountName": "api",
            "containers": [
                {
                    "name": "api",
                    "volumeMounts": mounts or [],
                    "resources": {"limits": {"memory": "1Gi"}},
                }
            ],
            "volumes": volumes_,
        },
    }


SOURCES = Sources(
    config_maps={
        "kube-root-ca.crt": {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}},
        "settings": {
            "data": {"a.yaml": "a: 1\n", "b.yaml": "b: 2\n"},
            "binaryData": {"blob": _b64("\x00\x01")},
        },
    },
    secrets={"tls": {"data": {"tls.crt": _b64("CERT"), "tls.key": _b64("KEY")}}},
    tokens={TokenKey("", 3607): "eyJ.token"},
    facts=FACTS,
)


def test_the_service_account_volume_has_token_ca_and_namespace() -> None:
    files, problems = volumes.payload(_pod([KUBE_API_ACCESS]), KUBE_API_ACCESS, SOURCES)
    assert problems == []
    assert files == {
        "token": File(b"eyJ.token", 0o644),
        "ca.crt": File(b"-----BEGIN CERTIFICATE-----\n", 0o644),
        "namespace": File(b"modelplane-system", 0o644),
    }


def test_config_map_items_pick_and_rename_keys_with_their_modes() -> None:
    volume = {
        "name": "cfg",
        "configMap": {
            "name": "settings",
            "defaultMode": 0o600,
            "items": [
                {"key": "a.yaml", "path": "conf/a.yaml"},
                {"key": "blob", "path": "b", "mode": 0o755},
            ],
        },
    }
    files, problems = volumes.payload(_pod([volume]), volume, SOURCES)
    assert problems == []
    assert files == {"conf/a.yaml": File(b"a: 1\n", 0o600), "b": File(b"\x00\x01", 0o755)}


def test_a_secret_volume_decodes_every_key() -> None:
    volume = {"name": "certs", "secret": {"secretName": "tls"}}
    files, _ = volumes.payload(_pod([volume]), volume, SOURCES)
    assert files == {"tls.crt": File(b"CERT"), "tls.key": File(b"KEY")}


def test_missing_sources_are_problems_naming_the_volume_and_field_unless_optional() -> None:
    missing = {"name": "cfg", "configMap": {"name": "absent"}}
    bad_key = {
        "name": "certs",
        "secret": {"secretName": "tls", "items": [{"key": "ca.crt", "path": "ca"}]},
    }
    optional = {"name": "opt", "secret": {"secretName": "absent", "optional": True}}
    pod = _pod([missing, bad_key, optional])
    assert volumes.payload(pod, missing, SOURCES)[1] == [
        "volume 'cfg'.configMap: configMap 'absent' not found"
    ]
    assert volumes.payload(pod, bad_key, SOURCES)[1] == [
        "volume 'certs'.secret.items[0]: key 'ca.crt' not in secret 'tls'"
    ]
    assert volumes.payload(pod, optional, SOURCES) == ({}, [])


def test_a_projection_without_its_token_yet_is_a_problem() -> None:
    _, problems = volumes.payload(_pod([KUBE_API_ACCESS]), KUBE_API_ACCESS, Sources(facts=FACTS))
    assert (
        problems[0]
        == "volume 'kube-api-access-x1'.projected.sources[0].serviceAccountToken: no token yet"
    )


def test_downward_api_writes_fields_labels_and_resources() -> None:
    volume = {
        "name": "info",
        "downwardAPI": {
            "items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}},
                {
                    "path": "mem",
                    "resourceFieldRef": {
                        "containerName": "api",
                        "resource": "limits.memory",
                        "divisor": "1Mi",
                    },
                },
            ]
        },
    }
    files, problems = volumes.payload(_pod([volume]), volume, SOURCES)
    assert problems == []
    assert files["labels"].data == b'app="api"\ntier="control"'
    assert files["ip"].data == b"10.244.0.5"
    assert files["mem"].data == b"1024"


def test_a_path_leaving_the_volume_is_refused() -> None:
    volume = {
        "name": "cfg",
        "configMap": {"name": "settings", "items": [{"key": "a.yaml", "path": "../etc/passwd"}]},
    }
    _, problems = volumes.payload(_pod([volume]), volume, SOURCES)
    assert problems == ["volume 'cfg': file path '../etc/passwd' must be relative, without '..'"]


def test_mounts_are_per_volume_directories_and_file_volumes_are_read_only(tmp_path: Path) -> None:
    pod = _pod(
        [
            {"name": "scratch", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "settings"}},
            {"name": "host", "hostPath": {"path": "/"}},
        ],
        [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "scratch", "mountPath": "/ro", "readOnly": True, "subPath": "sub"},
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "host", "mountPath": "/host"},
        ],
    )
    assert volumes.container_mounts(pod, pod["spec"]["containers"][0], tmp_path) == [
        VolumeMount(tmp_path / "volumes" / "scratch", Path("/scratch"), False),
        VolumeMount(tmp_path / "volumes" / "scratch" / "sub", Path("/ro"), True),
        VolumeMount(tmp_path / "volumes" / "cfg", Path("/etc/app"), True),
    ]


def test_the_atomic_writer_swaps_data_and_keeps_names_as_symlinks(tmp_path: Path) -> None:
    first = {"a.yaml": File(b"one", 0o600), "conf/b": File(b"two")}
    assert volumes.write_atomically(tmp_path, first, NOW)
    assert (tmp_path / "a.yaml").read_bytes() == b"one"
    assert (tmp_path / "conf" / "b").read_bytes() == b"two"
    assert os.readlink(tmp_path / "a.yaml") == "..data/a.yaml"
    assert (tmp_path / "a.yaml").stat().st_mode & 0o777 == 0o600
    old_target = os.readlink(tmp_path / "..data")

    assert not volumes.write_atomically(tmp_path, first, NOW + datetime.timedelta(seconds=1))

    assert volumes.write_atomically(
        tmp_path, {"a.yaml": File(b"three", 0o600)}, NOW + datetime.timedelta(seconds=2)
    )
    assert (tmp_path / "a.yaml").read_bytes() == b"three"
    assert not (tmp_path / "conf").exists()
    assert os.readlink(tmp_path / "..data") != old_target
    assert not (tmp_path / old_target).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("..")) == ["a.yaml"]


class FakeApi:
    """Answers like the API server: objects by name, a new token per TokenRequest."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Any] = {
            ("configmaps", "kube-root-ca.crt"): {"data": {"ca.crt": "CA"}},
            ("configmaps", "settings"): {"data": {"greeting": "hello"}},
        }
        self.token_requests: list[tuple[str, Any]] = []

    async def get_object(self, kind: str, namespace: str, name: str) -> Any:
        return self.objects.get((kind, name))

    async def request_token(self, path: str, body: Any) -> Any:
        self.token_requests.append((path, body))
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3607)
        return {
            "status": {
                "token": f"t{len(self.token_requests)}",
                "expirationTimestamp": expires.isoformat(),
            }
        }


def test_pod_volumes_request_a_bound_token_and_follow_config_map_changes(tmp_path: Path) -> None:
    api = FakeApi()
    cfg = {"name": "cfg", "configMap": {"name": "settings"}}
    pod = _pod([KUBE_API_ACCESS, cfg, {"name": "scratch", "emptyDir": {}}])
    pod_volumes = volumes.PodVolumes(api, pod, FACTS, tmp_path)

    assert asyncio.run(pod_volumes.sync()) == []
    access = tmp_path / "volumes" / "kube-api-access-x1"
    assert (access / "token").read_text() == "t1"
    assert (access / "ca.crt").read_text() == "CA"
    assert (access / "namespace").read_text() == "modelplane-system"
    assert (tmp_path / "volumes" / "scratch").is_dir()
    # An emptyDir any user may write, as kubelet makes it (the container may run as non-root).
    assert (tmp_path / "volumes" / "scratch").stat().st_mode & 0o777 == 0o777
    path, body = api.token_requests[0]
    assert path == "/api/v1/namespaces/modelplane-system/serviceaccounts/api/token"
    assert body["spec"] == {
        "audiences": [],
        "expirationSeconds": 3607,
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "api-0",
            "uid": "0123456789ab",
        },
    }

    api.objects[("configmaps", "settings")] = {"data": {"greeting": "bonjour"}}
    assert asyncio.run(pod_volumes.sync()) == []
    assert (tmp_path / "volumes" / "cfg" / "greeting").read_text() == "bonjour"
    assert len(api.token_requests) == 1  # the token is far from due


def test_a_missing_config_map_keeps_the_volume_unmade(tmp_path: Path) -> None:
    api = FakeApi()
    del api.objects[("configmaps", "settings")]
    cfg = {"name": "cfg", "configMap": {"name": "settings"}}
    problems = asyncio.run(volumes.PodVolumes(api, _pod([cfg]), FACTS, tmp_path).sync())
    assert problems == ["volume 'cfg'.configMap: configMap 'settings' not found"]
    assert not (tmp_path / "volumes" / "cfg" / "..data").exists()


def test_with_an_fs_group_a_secret_of_mode_0400_is_readable_by_that_group(
    tmp_path: Path,
) -> None:
    pod = {"spec": {"securityContext": {"runAsUser": 65532, "fsGroup": 65532}}}
    assert volumes.fs_group(pod) == 65532
    assert volumes.fs_group({"spec": {}}) is None
    files = {"tls.key": File(b"secret", 0o400)}
    assert volumes.write_atomically(tmp_path, files, NOW, volumes.fs_group(pod))
    published = (tmp_path / "tls.key").resolve()
    assert published.stat().st_gid == 65532
    assert published.stat().st_mode & 0o777 == 0o440
    # Unchanged content with the same group is not published again.
    assert not volumes.write_atomically(tmp_path, files, NOW, 65532)


def test_files_published_before_the_fs_group_was_known_are_published_again(
    tmp_path: Path,
) -> None:
    files = {"ca.crt": File(b"pem", 0o440)}
    assert volumes.write_atomically(tmp_path, files, NOW)
    assert volumes.write_atomically(tmp_path, files, NOW + datetime.timedelta(seconds=1), 4242)
    assert (tmp_path / "ca.crt").resolve().stat().st_gid == 4242


def _claim(name: str, volume: str | None, phase: str) -> Any:
    spec = {"volumeName": volume} if volume else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}


def _claim_volume(name: str, claim: str, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}


def test_a_bound_claim_is_its_volume_directory_shared_by_every_pod(tmp_path: Path) -> None:
    shared = tmp_path / "storage" / "pvc-1"
    shared.mkdir(parents=True)
    api = FakeApi()
    api.objects[("persistentvolumeclaims", "weights")] = _claim("weights", "pvc-1", "Bound")
    api.objects[("persistentvolumes", "pvc-1")] = {"spec": {"hostPath": {"path": str(shared)}}}
    writer = _pod([_claim_volume("models", "weights")], [{"name": "models", "mountPath": "/m"}])
    reader = _pod([_claim_volume("models", "weights")], [{"name": "models", "mountPath": "/m"}])
    for pod, directory in ((writer, tmp_path / "a"), (reader, tmp_path / "b")):
        assert asyncio.run(volumes.PodVolumes(api, pod, FACTS, directory).sync()) == []
    (tmp_path / "a" / "volumes" / "models" / "w.txt").write_text("written by a")
    assert (tmp_path / "b" / "volumes" / "models" / "w.txt").read_text() == "written by a"
    assert (shared / "w.txt").read_text() == "written by a"


def test_a_claim_is_read_only_where_the_pod_or_the_mount_asks(tmp_path: Path) -> None:
    pod = _pod(
        [_claim_volume("rw", "one"), _claim_volume("ro", "two", read_only=True)],
        [
            {"name": "rw", "mountPath": "/rw"},
            {"name": "rw", "mountPath": "/rw-view", "readOnly": True, "subPath": "sub"},
            {"name": "ro", "mountPath": "/ro"},
        ],
    )
    assert volumes.container_mounts(pod, pod["spec"]["containers"][0], tmp_path) == [
        VolumeMount(tmp_path / "volumes" / "rw", Path("/rw"), False),
        VolumeMount(tmp_path / "volumes" / "rw" / "sub", Path("/rw-view"), True),
        VolumeMount(tmp_path / "volumes" / "ro", Path("/ro"), True),
    ]


def test_a_claim_without_a_bound_directory_keeps_the_pod_waiting(tmp_path: Path) -> None:
    api = FakeApi()
    api.objects[("persistentvolumeclaims", "pending")] = _claim("pending", None, "Pending")
    api.objects[("persistentvolumeclaims", "csi")] = _claim("csi", "pv-csi", "Bound")
    api.objects[("persistentvolumes", "pv-csi")] = {"spec": {"csi": {"driver": "x"}}}
    api.objects[("persistentvolumeclaims", "gone-dir")] = _claim("gone-dir", "pv-gone", "Bound")
    api.objects[("persistentvolumes", "pv-gone")] = {
        "spec": {"hostPath": {"path": str(tmp_path / "nowhere")}}
    }
    pod = _pod(
        [
            _claim_volume("a", "pending"),
            _claim_volume("b", "absent"),
            _claim_volume("c", "csi"),
            _claim_volume("d", "gone-dir"),
        ]
    )
    problems = asyncio.run(volumes.PodVolumes(api, pod, FACTS, tmp_path).sync())
    at = ".persistentVolumeClaim.claimName"
    assert problems == [
        f"volume 'a'{at}: PersistentVolumeClaim 'pending' is not bound yet (Pending)",
        f"volume 'b'{at}: PersistentVolumeClaim 'absent' not found",
        f"volume 'c'{at}: PersistentVolume 'pv-csi' has no hostPath or local directory "
        "(the local fleet mounts directories only)",
        f"volume 'd'{at}: PersistentVolume 'pv-gone': directory {tmp_path / 'nowhere'} "
        "does not exist",
    ]
    assert not (tmp_path / "volumes").exists() or not any((tmp_path / "volumes").iterdir())
