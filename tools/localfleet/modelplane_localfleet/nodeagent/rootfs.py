"""Running a process from an image's root filesystem: what to run, and the launcher.

`launch_spec` applies Kubernetes' rules to a container and its image: `command`
replaces the image's Entrypoint and drops its Cmd, `args` replaces Cmd, and
`$(VAR)` in either is expanded from the container's env; the environment is
the image's Env overridden by the container's; the working directory is
`workingDir`, else the image's WorkingDir, else `/`; the user is `securityContext.runAsUser`/
`runAsGroup` (container over pod), else the image's User (`uid`, `name`,
`uid:gid`, `name:group`, names looked up in the image's /etc/passwd and
/etc/group), plus the pod's supplementalGroups and fsGroup.

The launcher (`python -m modelplane_localfleet.nodeagent.rootfs SPEC`) is the
process the agent starts: in a mount namespace of its own it mounts an overlay
of the image's shared root filesystem with a fresh writable layer of the
container's own, binds the pod's volumes at their mount paths (read-only ones
remounted read-only) and the cluster's
hosts file at /etc/hosts, mounts /proc and a /dev with the usual device nodes,
chroots, changes directory and user, and execs the command, keeping its pid.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelplane_localfleet.nodeagent import env
from modelplane_localfleet.nodeagent.images import Image
from modelplane_localfleet.nodeagent.mounts import bind_privately

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_PR_SET_PDEATHSIG = 1
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_BIND = 0x20, 0x1000
_CLONE_NEWUTS = 0x04000000
START_FAILED = 128


class ConfigError(Exception):
    """The container cannot be created from this image; the message says which field."""


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything the launcher needs, written as JSON beside the container's layer."""

    lower: str
    layer: str
    binds: list[tuple[str, str, bool]]  # host path, mount path, read-only
    hosts: str
    workdir: str
    uid: int
    gid: int
    groups: list[int]
    argv: list[str]
    hostname: str = ""

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: Path) -> Spec:
        data = json.loads(path.read_text())
        data["binds"] = [(str(s), str(t), bool(r)) for s, t, r in data["binds"]]
        return cls(**data)


def command(container: Mapping[str, Any], image: Image, variables: Mapping[str, str]) -> list[str]:
    """The process's argv by Kubernetes' rules; `$(VAR)` only in what the pod gave."""
    given = [env.expand(str(a), variables) for a in container.get("command") or []]
    args = [env.expand(str(a), variables) for a in container.get("args") or []]
    if given:
        return given + args
    return [*image.config.entrypoint, *(args or image.config.cmd)]


def environment(
    image: Image, container: Mapping[str, Any], variables: Mapping[str, str]
) -> dict[str, str]:
    """A default PATH, then the image's Env, then the container's `variables` (its env and
    what the agent adds), whose PATH counts only when the container sets PATH itself."""
    out = {"PATH": DEFAULT_PATH}
    for entry in image.config.env:
        name, _, value = entry.partition("=")
        out[name] = value
    own_path = any(e.get("name") == "PATH" for e in container.get("env") or [])
    out.update({k: v for k, v in variables.items() if k != "PATH" or own_path})
    return out


def _table(path: Path) -> list[list[str]]:
    """/etc/passwd or /etc/group of the image as rows of fields (none if missing)."""
    if not path.is_file() or path.is_symlink():
        return []
    return [line.split(":") for line in path.read_text(errors="replace").splitlines() if line]


def _id(text: str, table: list[list[str]], what: str, image: Image) -> int:
    if text.isdigit():
        return int(text)
    for row in table:
        if row[0] == text and len(row) > 2 and row[2].isdigit():
            return int(row[2])
    raise ConfigError(f"image {image.reference.name}: {what} {text!r} is not in its /etc/{what}")


def identity(
    pod: Mapping[str, Any], container: Mapping[str, Any], image: Image
) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary groups) the process runs as."""
    pod_context = (pod.get("spec") or {}).get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    passwd = _table(image.rootfs / "etc" / "passwd")
    groups = _table(image.rootfs / "etc" / "group")
    user_text, _, group_text = image.config.user.partition(":")
    uid = context.get("runAsUser")
    if uid is None:
        uid = _id(user_text or "0", passwd, "passwd", image)
    gid = context.get("runAsGroup")
    if gid is None and group_text:
        gid = _id(group_text, groups, "group", image)
    row = next((r for r in passwd if len(r) > 3 and r[2] == str(uid)), None)
    if gid is None:
        gid = int(row[3]) if row and row[3].isdigit() else 0
    extra = [int(g) for g in pod_context.get("supplementalGroups") or []]
    if pod_context.get("fsGroup") is not None:  # kubelet adds it: the group volumes belong to
        extra.append(int(pod_context["fsGroup"]))
    if row:
        extra += [int(r[2]) for r in groups if len(r) > 3 and row[0] in r[3].split(",")]
    return int(uid), int(gid), sorted({int(gid), *extra})


def launch_spec(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    image: Image,
    container_env: Mapping[str, str],
    binds: list[tuple[str, str, bool]],
    hosts: Path,
    layer: Path,
) -> Spec:
    """The launch of `container` from `image`: volume `binds` (host path, mount path,
    read-only), the hosts file, its writable layer in `layer`; `ConfigError` when the
    image's user is unknown."""
    uid, gid, groups = identity(pod, container, image)
    for source, _, _ in binds:
        folder = Path(source)
        if not folder.exists():
            folder.mkdir(parents=True)
            folder.chmod(0o777)  # as kubelet makes an emptyDir: any user may write
    return Spec(
        lower=str(image.rootfs), layer=str(layer), binds=binds, hosts=str(hosts),
        workdir=str(container.get("workingDir") or image.config.working_dir or "/"),
        uid=uid, gid=gid, groups=groups, argv=command(container, image, container_env),
        hostname=pod_hostname(pod),
    )  # fmt: skip


def pod_hostname(pod: Mapping[str, Any]) -> str:
    """What kubelet gives the pod as its hostname: `spec.hostname`, else the pod's name
    (cut to 63 characters, no trailing dots or dashes)."""
    spec = pod.get("spec") or {}
    name = str(spec.get("hostname") or (pod.get("metadata") or {}).get("name") or "")
    return name[:63].rstrip("-.")


def launcher_argv(spec: Spec, path: Path) -> list[str]:
    """Write `spec` to `path`; the command line that runs it."""
    spec.write(path)
    return [sys.executable, "-m", __name__, str(path)]


# -- the launcher (runs as the container's process until it execs) -----------------


def _mount(source: str, target: Path, fstype: str | None, flags: int, data: str = "") -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    kind = fstype.encode() if fstype else None
    if libc.mount(source.encode(), str(target).encode(), kind, flags, data.encode() or None):
        raise OSError(ctypes.get_errno(), f"mounting {source} on {target} failed")


def _bind(source: str, target: Path, read_only: bool = False) -> None:
    if Path(source).is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)
    _mount(source, target, None, _MS_BIND)
    if read_only:  # a bind mount takes MS_RDONLY only on a remount
        _mount("none", target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)


def _inside(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def prepare(spec: Spec) -> Path:
    """Mount the container's root filesystem in a new mount namespace; its path."""
    layer = Path(spec.layer)
    if layer.exists():
        shutil.rmtree(layer)  # every start begins from the image, as a new container does
    upper, work, root = layer / "upper", layer / "work", layer / "rootfs"
    for folder in (upper, work, root):
        folder.mkdir(parents=True)
    bind_privately([])
    options = f"lowerdir={spec.lower},upperdir={upper},workdir={work}"
    _mount("overlay", root, "overlay", 0, options)
    for source, target, read_only in spec.binds:
        _bind(source, _inside(root, target), read_only)
    _bind(spec.hosts, root / "etc" / "hosts")
    (root / "proc").mkdir(exist_ok=True)
    _mount("proc", root / "proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    _mount("tmpfs", dev, "tmpfs", _MS_NOSUID, "mode=755,size=64k")
    for name in DEVICES:
        if Path("/dev", name).exists():
            _bind(f"/dev/{name}", dev / name)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, dev / name)
    (dev / "shm").mkdir()
    return root


def _set_hostname(name: str) -> None:
    """A UTS namespace of the container's own, named like its pod (leader election and
    logs read it, as in a real pod)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWUTS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUTS) failed")
    encoded = name.encode()
    if libc.sethostname(encoded, len(encoded)) != 0:
        raise OSError(ctypes.get_errno(), f"sethostname({name!r}) failed")


def launch(spec: Spec) -> None:
    if spec.hostname:
        _set_hostname(spec.hostname)
    root = prepare(spec)
    os.chroot(root)
    os.makedirs(spec.workdir, exist_ok=True)
    os.chdir(spec.workdir)
    os.setgroups(spec.groups)
    os.setgid(spec.gid)
    os.setuid(spec.uid)
    # A change of credentials clears the parent-death signal: set it again.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.execvpe(spec.argv[0], spec.argv, os.environ)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    spec = Spec.read(Path(args[0]))
    try:
        launch(spec)
    except OSError as error:
        print(f"starting {spec.argv!r} failed: {error}", file=sys.stderr, flush=True)
        sys.exit(START_FAILED)


if __name__ == "__main__":
    main()
