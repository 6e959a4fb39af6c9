"""The local fleet's network namespace: where every apiserver, gateway, pod and client lives.

Inside it, loopback is up and a pod range is routed locally (`ip route add local
CIDR dev lo`), so any address in the range can be bound by a process there and
traffic to it never leaves the namespace. Names that processes must resolve (an
LWS leader address, say) go into `/etc/netns/NAME/hosts`, which `ip netns exec`
mounts over `/etc/hosts`.

Creating and deleting namespaces needs root; every entry point says so plainly.
Both operations are idempotent, and `delete` also cleans up after a harness that
crashed: it kills what still runs inside before removing the namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

RUN_DIR = Path("/run/netns")
ETC_DIR = Path("/etc/netns")


class PrivilegeError(RuntimeError):
    """The harness lacks the privilege to manage network namespaces."""


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


class NetworkNamespace:
    """One named namespace with a locally routed pod range."""

    def __init__(self, name: str, pod_cidr: str = "10.244.0.0/16") -> None:
        self.name = name
        self.pod_cidr = str(ipaddress.ip_network(pod_cidr))

    @property
    def path(self) -> Path:
        return RUN_DIR / self.name

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        """Create the namespace (if missing), bring loopback up and route the pod range."""
        require_root("creating the fleet's network namespace")
        if not self.exists():
            _ip("netns", "add", self.name)
        self.run(["ip", "link", "set", "lo", "up"])
        routes = self.run(["ip", "route", "show", "table", "local"]).stdout
        if self.pod_cidr not in routes:
            self.run(["ip", "route", "add", "local", self.pod_cidr, "dev", "lo"])
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
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
            pids = self.pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.pids():
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
        return os.stat("/proc/self/ns/net").st_ino == os.stat(self.path).st_ino

    def set_hosts(self, names: Mapping[str, str]) -> None:
        """Write the namespace's /etc/hosts: localhost plus `names` (hostname -> IP)."""
        hosts_dir = ETC_DIR / self.name
        hosts_dir.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{ip} {host}" for host, ip in sorted(names.items())]
        (hosts_dir / "hosts").write_text("\n".join(lines) + "\n")
