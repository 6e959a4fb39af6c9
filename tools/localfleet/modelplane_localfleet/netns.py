"""The local fleet's network namespace: where every apiserver, gateway, pod and client lives.

Inside it, loopback is up and each of its ranges (the pod range, the clusters'
own addresses) is routed locally (`ip route add local CIDR dev lo`), so any
address in a range can be bound by a process there and traffic to it never
leaves the namespace. Names that processes must resolve (an
LWS leader address, say) go into `/etc/netns/NAME/hosts`, which `ip netns exec`
mounts over `/etc/hosts`. The ports the harness and the e2e tests give their
services (`RESERVED_PORTS`, e.g. gRPC on 50071) are kept out of the
namespace's ephemeral range, so an outgoing connection (kubectl, Traefik) never
takes one of them just before a service binds it.

Creating and deleting namespaces needs root; every entry point says so plainly.
Both operations are idempotent, and `delete` also cleans up after a harness that
crashed: it kills what still runs inside before removing the namespace.

`enter` moves the calling thread (and every thread and child process it starts
afterwards) into the namespace, so a harness or a test session can be a client
there without wrapping each command; `require_inside` is the guard clients use.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

RUN_DIR = Path("/run/netns")
ETC_DIR = Path("/etc/netns")


CLONE_NEWNET = 0x40000000
RESERVED_PORTS = "50000-50999"
# Every process of every fleet runs as root and shares root's inotify limits (they are
# not per network namespace). Kubernetes binaries, Traefik and KEDA each take inotify
# instances (certificate and file reloaders): the kernel's default of 128 instances runs
# out with a few fleets up at once ("too many open files" at start-up).
INOTIFY_FLOORS = {
    Path("/proc/sys/fs/inotify/max_user_instances"): 8192,
    Path("/proc/sys/fs/inotify/max_user_watches"): 524288,
}


class PrivilegeError(RuntimeError):
    """The harness lacks the privilege to manage network namespaces."""


class OutsideNamespaceError(RuntimeError):
    """A client was about to run outside the fleet's network namespace."""


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"{action} needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to manage network "
            "namespaces; run it with sudo or as root"
        )


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _setns(path: Path, what: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {what}: {os.strerror(error)}")
    finally:
        os.close(fd)


def _ancestry(pid: int) -> set[int]:
    """`pid` and every ancestor up to init."""
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


class NetworkNamespace:
    """One named namespace with locally routed ranges (default: the pod range)."""

    def __init__(self, name: str, *local_ranges: str) -> None:
        self.name = name
        self._origin: int | None = None
        self.local_ranges = tuple(
            str(ipaddress.ip_network(cidr)) for cidr in (local_ranges or ("10.244.0.0/16",))
        )

    @property
    def path(self) -> Path:
        return RUN_DIR / self.name

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        """Create the namespace (if missing), bring loopback up and route its ranges locally."""
        require_root("creating the fleet's network namespace")
        if not self.exists():
            _ip("netns", "add", self.name)
        self.run(["ip", "link", "set", "lo", "up"])
        raise_inotify_limits()
        reserve = f"echo {RESERVED_PORTS} > /proc/sys/net/ipv4/ip_local_reserved_ports"
        self.run(["sh", "-c", reserve])
        routes = self.run(["ip", "route", "show", "table", "local"]).stdout.split()
        for cidr in self.local_ranges:
            if cidr not in routes:
                self.run(["ip", "route", "add", "local", cidr, "dev", "lo"])
        if not (ETC_DIR / self.name / "hosts").exists():
            self.set_hosts({})

    def delete(self, grace_s: float = 5.0) -> None:
        """Stop every process inside (TERM, then KILL) and remove the namespace and its files."""
        require_root("removing the fleet's network namespace")
        if self.exists():
            self.kill_all(grace_s)
            _ip("netns", "del", self.name, check=False)
        hosts_dir = ETC_DIR / self.name
        if hosts_dir.exists():
            for child in hosts_dir.iterdir():
                child.unlink()
            hosts_dir.rmdir()

    def pids(self) -> list[int]:
        if not self.exists():
            return []
        out = _ip("netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split()]

    def kill_all(self, grace_s: float) -> None:
        """Kill every process inside except this one and its ancestors (a client run inside)."""
        spared = _ancestry(os.getpid())
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
            pids = [pid for pid in self.pids() if pid not in spared]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while set(self.pids()) - spared and time.monotonic() < deadline:
                time.sleep(0.05)
            if not set(self.pids()) - spared:
                return

    def exec_args(self, command: Sequence[str]) -> list[str]:
        """`command` wrapped to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def run(
        self, command: Sequence[str], timeout: float | None = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` inside the namespace and wait; raises with its stderr on failure."""
        result = subprocess.run(
            self.exec_args(command), capture_output=True, text=True, check=False, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} in netns {self.name} failed: {result.stderr.strip()}"
            )
        return result

    def is_current(self) -> bool:
        """True when this process already runs inside the namespace."""
        if not self.exists():
            return False
        here = os.stat("/proc/thread-self/ns/net")
        there = os.stat(self.path)
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def enter(self) -> None:
        """Move the calling thread into the namespace (threads and children it starts follow)."""
        require_root("entering the fleet's network namespace")
        if self.is_current():
            return
        if self._origin is None:
            self._origin = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        _setns(self.path, self.name)

    def origin(self) -> Path | None:
        """A path to the namespace this thread was in before `enter` (None before it)."""
        return None if self._origin is None else Path(f"/proc/{os.getpid()}/fd/{self._origin}")

    def leave(self) -> None:
        """Move the calling thread back to the namespace it was in before `enter`."""
        if self._origin is not None:
            _setns(Path(f"/proc/self/fd/{self._origin}"), "the original network namespace")
            os.close(self._origin)
            self._origin = None

    def require_inside(self, client: str) -> None:
        """Refuse to start `client` unless this thread runs inside the namespace."""
        if not self.is_current():
            raise OutsideNamespaceError(
                f"{client} must run inside the fleet's network namespace {self.name}; "
                "use `modelplane-localfleet exec --state DIR -- ...`"
            )

    def hosts(self) -> dict[str, str]:
        """The names of the namespace's hosts file (hostname -> IP), localhost left out."""
        path = ETC_DIR / self.name / "hosts"
        found: dict[str, str] = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            address, *names = line.split()
            found.update({name: address for name in names if name != "localhost"})
        return found

    def set_hosts(self, names: Mapping[str, str]) -> None:
        """Write the namespace's /etc/hosts: localhost plus `names` (hostname -> IP)."""
        hosts_dir = ETC_DIR / self.name
        hosts_dir.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{ip} {host}" for host, ip in sorted(names.items())]
        (hosts_dir / "hosts").write_text("\n".join(lines) + "\n")


def raise_inotify_limits(floors: Mapping[Path, int] = INOTIFY_FLOORS) -> list[Path]:
    """Raise each inotify limit below its floor to the floor (never lower one); the changed."""
    raised = []
    for path, floor in floors.items():
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text().split()[0]) < floor:
                path.write_text(f"{floor}\n")
                raised.append(path)
    return raised
