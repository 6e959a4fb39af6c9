"""The fleet namespace on this machine: pod addresses bind and answer inside it, and nothing is left after delete."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelplane_localfleet.netns import (
    RESERVED_PORTS,
    NetworkNamespace,
    PrivilegeError,
    raise_inotify_limits,
    require_root,
)
from modelplane_localfleet.services import GRPC_PORTS

ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root to create namespaces"
)

ECHO = """
import socket, sys
server = socket.create_server((sys.argv[1], 8000))
client = socket.create_connection((sys.argv[2], 8000))
conn, _ = server.accept()
client.sendall(b"pod")
print(conn.recv(3).decode())
"""


@pytest.fixture
def namespace() -> Iterator[NetworkNamespace]:
    ns = NetworkNamespace(f"mp-test-{uuid.uuid4().hex[:8]}", "10.244.0.0/16")
    ns.create()
    yield ns
    ns.delete(grace_s=1)


@ROOT_ONLY
def test_a_pod_address_binds_and_answers_inside_the_namespace(namespace: NetworkNamespace) -> None:
    result = namespace.run([sys.executable, "-c", ECHO, "10.244.7.9", "10.244.7.9"])
    assert result.stdout.strip() == "pod"


@ROOT_ONLY
def test_the_services_fixed_ports_are_never_handed_out_as_ephemeral_ports(
    namespace: NetworkNamespace,
) -> None:
    grab = (
        "import socket\n"
        "ports = set()\n"
        "for _ in range(2000):\n"
        "    s = socket.socket(); s.bind(('127.0.0.1', 0)); ports.add(s.getsockname()[1]); s.close()\n"
        "print(sum(50000 <= p <= 50999 for p in ports), len(ports))\n"
    )
    reserved, seen = map(int, namespace.run([sys.executable, "-c", grab]).stdout.split())
    assert seen > 1000 and reserved == 0, "an ephemeral port fell in the services' range"
    low, high = map(int, RESERVED_PORTS.split("-"))
    assert (low, high) == (50000, 50999)
    assert all(low <= port <= high for port in GRPC_PORTS.values()), GRPC_PORTS


@ROOT_ONLY
def test_names_written_to_the_namespace_hosts_file_resolve_inside_it(
    namespace: NetworkNamespace,
) -> None:
    namespace.set_hosts({"leader.lws.ml-team": "10.244.1.2"})
    result = namespace.run(["getent", "hosts", "leader.lws.ml-team"])
    assert result.stdout.split()[0] == "10.244.1.2"
    assert namespace.hosts() == {"leader.lws.ml-team": "10.244.1.2"}, "read back, no localhost"


@ROOT_ONLY
def test_create_is_idempotent_and_delete_kills_what_runs_inside(
    namespace: NetworkNamespace,
) -> None:
    namespace.create()
    sleeper = subprocess.Popen(namespace.exec_args(["sleep", "300"]))
    try:
        # `ip netns exec` enters the namespace a moment after it starts
        deadline = time.monotonic() + 5
        while not namespace.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert namespace.pids(), "the sleeper runs inside"
        namespace.delete(grace_s=1)
        assert sleeper.wait(timeout=5) != 0
        assert not namespace.exists()
        assert not namespace.is_current()
    finally:
        sleeper.kill()


@ROOT_ONLY
def test_this_test_process_is_not_inside_the_fleet_namespace(namespace: NetworkNamespace) -> None:
    assert not namespace.is_current()
    code = (
        "import os,sys; print(os.stat('/proc/self/ns/net').st_ino == os.stat(sys.argv[1]).st_ino)"
    )
    assert namespace.run([sys.executable, "-c", code, str(namespace.path)]).stdout.strip() == "True"


def test_without_root_the_error_says_what_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(PrivilegeError, match="needs root"):
        require_root("starting the fleet")


def test_inotify_limits_are_raised_to_their_floor_and_never_lowered(tmp_path: Path) -> None:
    low, high = tmp_path / "instances", tmp_path / "watches"
    low.write_text("128\n")
    high.write_text("1048576\n")
    raised = raise_inotify_limits({low: 8192, high: 524288, tmp_path / "missing": 1})
    assert raised == [low]
    assert low.read_text() == "8192\n"
    assert high.read_text() == "1048576\n"
