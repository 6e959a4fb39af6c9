"""Pod volumes as kubelet makes them: emptyDir, configMap, secret, downwardAPI, projected
and persistentVolumeClaim.

Each volume is a directory of the pod's own, `<pod dir>/volumes/<name>/`; a
persistentVolumeClaim's is a symbolic link there to its bound volume's directory
(`claim_directory`: claim -> bound PersistentVolume -> its `hostPath` or `local`
path), so every pod on every node that uses the claim binds the same directory
(all nodes of the local fleet share one file system). A claim that is missing, not
bound yet, or bound to a volume without a directory here is a problem naming the
volume and field, so the pod waits in ContainerCreating as under kubelet.
`container_mounts` says where a container sees them: `{mountPath: host
directory, readOnly}` per `volumeMount` (with `subPath`); configMap, secret,
downwardAPI and projected volumes are always read-only, as kubelet mounts
them, and a claim is where the mount or the pod's `persistentVolumeClaim.readOnly`
asks. This is the interface the runtime uses to bind them into the process's
mount namespace (or under an image's root file system).

`payload` renders the files of one volume from the objects it reads (pure):
ConfigMap `data` and `binaryData`, Secret `data`, downwardAPI `fieldRef`
(labels and annotations as `key="value"` lines) and `resourceFieldRef`,
projected `serviceAccountToken`; `items` pick and rename keys; `mode` or
`defaultMode` (0644 by default) set each file's permissions. A missing object
or key that is not `optional` is a problem naming the volume and field.

`write_atomically` publishes a payload the way kubelet's atomic writer does:
the files go into a fresh hidden directory, the `..data` symlink is swapped to
it in one rename, and each visible name is a symlink through `..data`; so a
running process sees either the old files or the new ones, never a mix, and a
changed ConfigMap, Secret or token reaches it without a restart.

`PodVolumes` keeps one pod's volumes current: it reads the ConfigMaps and
Secrets (the agent serves them from its watch cache), asks for tokens when due
(see `tokens`), and rewrites what changed, every `SYNC_S` seconds while the
pod runs.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from modelplane.kube import TRANSIENT, Json

from modelplane_localfleet.nodeagent import env, tokens

log = logging.getLogger("nodeagent.volumes")
SYNC_S = 2.0
DEFAULT_MODE = 0o644
FILE_KINDS = ("configMap", "secret", "downwardAPI", "projected")
CLAIM = "persistentVolumeClaim"
DATA_LINK = "..data"


@dataclass(frozen=True, slots=True)
class VolumeMount:
    """One volume seen by a container: `source` on the host at `target` in the container."""

    source: Path
    target: Path
    read_only: bool


@dataclass(frozen=True, slots=True)
class File:
    data: bytes
    mode: int = DEFAULT_MODE


@dataclass(slots=True)
class Sources:
    """What a pod's volumes read: objects of its namespace by name, its tokens, its facts."""

    config_maps: Mapping[str, Json] = field(default_factory=dict)
    secrets: Mapping[str, Json] = field(default_factory=dict)
    tokens: Mapping[tokens.TokenKey, str] = field(default_factory=dict)
    facts: env.PodFacts = field(default_factory=lambda: env.PodFacts("", "", ""))
    claims: Mapping[str, Json] = field(default_factory=dict)
    persistent_volumes: Mapping[str, Json] = field(default_factory=dict)


def volume_dir(pod_dir: Path, name: str) -> Path:
    return pod_dir / "volumes" / name


def _kind(volume: Mapping[str, Any]) -> str | None:
    for kind in ("emptyDir", CLAIM, *FILE_KINDS):
        if kind in volume:
            return kind
    return None


def container_mounts(pod: Json, container: Json, pod_dir: Path) -> list[VolumeMount]:
    """The container's mounts of volumes the agent makes, in `volumeMounts` order."""
    declared = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    out = []
    for mount in container.get("volumeMounts") or []:
        volume = declared.get(mount["name"]) or {}
        kind = _kind(volume)
        if kind is None:
            continue
        source = volume_dir(pod_dir, mount["name"])
        if mount.get("subPath"):
            source = source / mount["subPath"]
        claim_read_only = bool((volume.get(CLAIM) or {}).get("readOnly"))
        read_only = bool(mount.get("readOnly")) or kind in FILE_KINDS or claim_read_only
        out.append(VolumeMount(source, Path(mount["mountPath"]), read_only))
    return out


# -- payloads (pure) -------------------------------------------------------------------


def claim_names(pod: Json) -> set[str]:
    """The PersistentVolumeClaims the pod's volumes use."""
    return {v[CLAIM]["claimName"] for v in pod["spec"].get("volumes") or [] if CLAIM in v}


def claim_directory(volume: Json, sources: Sources) -> tuple[Path | None, list[str]]:
    """The host directory of a persistentVolumeClaim volume, or the problems that keep it."""
    name = volume[CLAIM].get("claimName", "")
    where = f"volume {volume['name']!r}.persistentVolumeClaim.claimName"
    claim = sources.claims.get(name)
    if claim is None:
        return None, [f"{where}: PersistentVolumeClaim {name!r} not found"]
    if claim["metadata"].get("deletionTimestamp"):
        return None, [f"{where}: PersistentVolumeClaim {name!r} is being deleted"]
    bound = (claim.get("spec") or {}).get("volumeName")
    phase = (claim.get("status") or {}).get("phase", "Pending")
    if not bound or phase != "Bound":
        return None, [f"{where}: PersistentVolumeClaim {name!r} is not bound yet ({phase})"]
    found = sources.persistent_volumes.get(bound)
    if found is None:
        return None, [f"{where}: PersistentVolume {bound!r} of claim {name!r} not found"]
    spec = found.get("spec") or {}
    path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
    if not path:
        return None, [
            f"{where}: PersistentVolume {bound!r} has no hostPath or local directory "
            "(the local fleet mounts directories only)"
        ]
    if not Path(path).is_dir():
        return None, [f"{where}: PersistentVolume {bound!r}: directory {path} does not exist"]
    return Path(path), []


def referenced(pod: Json, kind: str) -> set[str]:
    """Names of the ConfigMaps (`configMap`) or Secrets (`secret`) the pod's volumes read."""
    name_field = "secretName" if kind == "secret" else "name"
    names = set()
    for volume in pod["spec"].get("volumes") or []:
        if kind in volume:
            names.add(volume[kind][name_field])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if kind in source:
                names.add(source[kind]["name"])
    return names


def token_keys(pod: Json) -> set[tokens.TokenKey]:
    """The tokens the pod's projected volumes ask for."""
    return {
        tokens.key_of(source["serviceAccountToken"])
        for volume in pod["spec"].get("volumes") or []
        for source in (volume.get("projected") or {}).get("sources") or []
        if "serviceAccountToken" in source
    }


def _decoded(obj: Json, kind: str) -> dict[str, bytes]:
    if kind == "secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def _valid_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and ".." not in parts and path[:2] != ".."


def _keys(
    where: str, kind: str, spec: Json, objects: Mapping[str, Json], mode: int
) -> tuple[dict[str, File], list[str]]:
    """Files of a configMap or secret source: every key, or the `items` it picks."""
    name = spec.get("secretName" if kind == "secret" and "secretName" in spec else "name", "")
    obj = objects.get(name)
    if obj is None:
        if spec.get("optional"):
            return {}, []
        return {}, [f"{where}: {kind} {name!r} not found"]
    data = _decoded(obj, kind)
    items = spec.get("items")
    if not items:
        return {key: File(value, mode) for key, value in data.items()}, []
    files: dict[str, File] = {}
    problems = []
    for i, item in enumerate(items):
        if item["key"] not in data:
            if not spec.get("optional"):
                problems.append(f"{where}.items[{i}]: key {item['key']!r} not in {kind} {name!r}")
            continue
        files[item["path"]] = File(data[item["key"]], int(item.get("mode", mode)))
    return files, problems


def _downward(
    where: str, pod: Json, spec: Json, facts: env.PodFacts, mode: int
) -> tuple[dict[str, File], list[str]]:
    files: dict[str, File] = {}
    problems = []
    meta = pod.get("metadata") or {}
    for i, item in enumerate(spec.get("items") or []):
        item_mode = int(item.get("mode", mode))
        if "fieldRef" in item:
            path = item["fieldRef"]["fieldPath"]
            if path in ("metadata.labels", "metadata.annotations"):
                values = meta.get(path.split(".")[1]) or {}
                text = "\n".join(f'{k}="{values[k]}"' for k in sorted(values))
            else:
                found = env.field_value(pod, path, facts)
                if found is None:
                    problems.append(f"{where}.items[{i}].fieldRef: unsupported fieldPath {path!r}")
                    continue
                text = found
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            containers = pod["spec"].get("containers") or []
            container = next(
                (c for c in containers if c["name"] == ref.get("containerName")),
                containers[0] if containers else {},
            )
            text = env.resource_value(ref, container)
        else:
            problems.append(f"{where}.items[{i}]: neither fieldRef nor resourceFieldRef")
            continue
        files[item["path"]] = File(text.encode(), item_mode)
    return files, problems


def payload(pod: Json, volume: Json, sources: Sources) -> tuple[dict[str, File], list[str]]:
    """The files of one configMap, secret, downwardAPI or projected volume, and its problems."""
    where = f"volume {volume['name']!r}"
    kind = _kind(volume)
    spec = volume.get(kind or "") or {}
    mode = int(spec.get("defaultMode", DEFAULT_MODE))
    if kind == "configMap":
        files, problems = _keys(f"{where}.configMap", kind, spec, sources.config_maps, mode)
    elif kind == "secret":
        files, problems = _keys(f"{where}.secret", kind, spec, sources.secrets, mode)
    elif kind == "downwardAPI":
        files, problems = _downward(f"{where}.downwardAPI", pod, spec, sources.facts, mode)
    elif kind == "projected":
        files, problems = {}, []
        for i, source in enumerate(spec.get("sources") or []):
            at = f"{where}.projected.sources[{i}]"
            if "serviceAccountToken" in source:
                projection = source["serviceAccountToken"]
                token = sources.tokens.get(tokens.key_of(projection))
                if token is None:
                    problems.append(f"{at}.serviceAccountToken: no token yet")
                else:
                    files[projection["path"]] = File(token.encode(), mode)
                continue
            if "downwardAPI" in source:
                projection = source["downwardAPI"]
                found = _downward(f"{at}.downwardAPI", pod, projection, sources.facts, mode)
            elif "configMap" in source:
                found = _keys(f"{at}.configMap", "configMap", source["configMap"],
                              sources.config_maps, mode)  # fmt: skip
            elif "secret" in source:
                found = _keys(f"{at}.secret", "secret", source["secret"], sources.secrets, mode)
            else:
                found = {}, []  # clusterTrustBundle, podCertificate: not simulated
            files.update(found[0])
            problems += found[1]
    else:
        return {}, [f"{where}: not a configMap, secret, downwardAPI or projected volume"]
    problems += [f"{where}: file path {p!r} must be relative, without '..'"
                 for p in files if not _valid_path(p)]  # fmt: skip
    return files, problems


# -- the atomic writer -------------------------------------------------------------------


def _current(directory: Path) -> dict[str, File] | None:
    link = directory / DATA_LINK
    if not link.is_symlink():
        return None
    target = directory / os.readlink(link)
    out = {}
    for path in target.rglob("*"):
        if path.is_file():
            mode = path.stat().st_mode & 0o777
            out[str(path.relative_to(target))] = File(path.read_bytes(), mode)
    return out


def _owned_by(directory: Path, group: int | None) -> bool:
    """Every published file belongs to `group` (always true without one)."""
    if group is None:
        return True
    target = directory / DATA_LINK
    return all(p.stat().st_gid == group for p in target.rglob("*") if p.is_file())


def fs_group(pod: Json) -> int | None:
    """The pod's `securityContext.fsGroup`: the group its file volumes belong to."""
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return int(value) if value is not None else None


def write_atomically(
    directory: Path,
    files: Mapping[str, File],
    now: datetime.datetime,
    group: int | None = None,
) -> bool:
    """Publish `files` in `directory` through a `..data` symlink swap; False if unchanged.

    With `group` (the pod's fsGroup) every file belongs to that group and is group-readable
    (mode | 0440), as kubelet sets a read-only volume's ownership, so a non-root process of
    that group reads a Secret published with mode 0440 or 0400."""
    directory.mkdir(parents=True, exist_ok=True)
    if group is not None:
        files = {path: File(f.data, f.mode | 0o440) for path, f in files.items()}
    if _current(directory) == dict(files) and _owned_by(directory, group):
        return False
    old = os.readlink(directory / DATA_LINK) if (directory / DATA_LINK).is_symlink() else None
    fresh = directory / f"..{now.strftime('%Y_%m_%d_%H_%M_%S.%f')}"
    fresh.mkdir()
    for relative, content in files.items():
        path = fresh / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.data)
        path.chmod(content.mode)
        if group is not None:
            os.chown(path, -1, group)
    staging = directory / f"{DATA_LINK}_tmp"
    staging.unlink(missing_ok=True)
    staging.symlink_to(fresh.name)
    staging.replace(directory / DATA_LINK)
    visible = {PurePosixPath(p).parts[0] for p in files}
    for name in visible:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{name}")
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible and entry.is_symlink():
            entry.unlink()
    if old is not None:
        shutil.rmtree(directory / old, ignore_errors=True)
    return True


def link_to(link: Path, target: Path) -> None:
    """`link` becomes a symbolic link to `target` (replaced in one rename if it differs)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    staging = link.with_name(f".{link.name}.tmp")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target)
    staging.replace(link)


# -- one pod's volumes ---------------------------------------------------------------------


class Reader(Protocol):
    """What `PodVolumes` needs from its agent."""

    async def get_object(self, kind: str, namespace: str, name: str) -> Json | None: ...

    async def request_token(self, path: str, body: Json) -> Json: ...


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class PodVolumes:
    """The volumes of one pod, made and kept current."""

    def __init__(self, reader: Reader, pod: Json, facts: env.PodFacts, pod_dir: Path) -> None:
        self.reader = reader
        self.pod = pod
        self.facts = facts
        self.pod_dir = pod_dir
        self.tokens: dict[tokens.TokenKey, tokens.Token] = {}

    async def _objects(self, kind: str, names: set[str]) -> dict[str, Json]:
        namespace = self.pod["metadata"].get("namespace", "default")
        out = {}
        for name in sorted(names):
            found = await self.reader.get_object(f"{kind.lower()}s", namespace, name)
            if found is not None:
                out[name] = found
        return out

    async def _refresh_tokens(self) -> None:
        now = _now()
        for key in token_keys(self.pod):
            held = self.tokens.get(key)
            if held is None or held.due(now):
                body = tokens.request_body(self.pod, key)
                answer = await self.reader.request_token(tokens.request_path(self.pod), body)
                self.tokens[key] = tokens.from_response(answer, now)

    async def _persistent_volumes(self, claims: Mapping[str, Json]) -> dict[str, Json]:
        out = {}
        for claim in claims.values():
            bound = str((claim.get("spec") or {}).get("volumeName") or "")
            found = await self.reader.get_object("persistentvolumes", "", bound) if bound else None
            if found is not None:
                out[bound] = found
        return out

    async def sync(self) -> list[str]:
        """Make every volume current; the problems that keep some from being made."""
        try:
            await self._refresh_tokens()
            claims = await self._objects("PersistentVolumeClaim", claim_names(self.pod))
            sources = Sources(
                await self._objects("ConfigMap", referenced(self.pod, "configMap")),
                await self._objects("Secret", referenced(self.pod, "secret")),
                {key: token.value for key, token in self.tokens.items()},
                self.facts,
                claims,
                await self._persistent_volumes(claims),
            )
        except (*TRANSIENT, ValueError) as error:
            return [f"reading the volumes' sources failed: {error}"]
        problems = []
        for volume in self.pod["spec"].get("volumes") or []:
            kind = _kind(volume)
            directory = volume_dir(self.pod_dir, volume["name"])
            if kind == CLAIM:
                target, found = claim_directory(volume, sources)
                problems += found
                if target is not None:
                    link_to(directory, target)
                continue
            if kind == "emptyDir" and not directory.exists():
                directory.mkdir(parents=True)
                directory.chmod(0o777)  # as kubelet makes an emptyDir: any user may write
            if kind not in FILE_KINDS:
                continue
            files, found = payload(self.pod, volume, sources)
            problems += found
            if not found and write_atomically(directory, files, _now(), fs_group(self.pod)):
                log.debug("pod %s: volume %s updated", self.pod_dir.name, volume["name"])
        return problems

    async def keep_current(self) -> None:
        """Resync every `SYNC_S` seconds (ConfigMap, Secret and token changes reach the pod)."""
        while True:
            await asyncio.sleep(SYNC_S)
            problems = await self.sync()
            if problems:
                log.warning("pod %s: volumes: %s", self.pod_dir.name, "; ".join(problems))
