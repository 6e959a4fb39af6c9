"""Leader/worker gangs (LeaderWorkerSet): the leader waits for its workers, workers join it.

Protocol: a worker connects to the leader's group port and sends one JSON line
`{"worker_index": i, "pod": name, "namespace": ns, "ip": ip, "group_size": n}`;
the leader answers one JSON line, `{"ok": true, "leader": ..., "group_size": n}` or
`{"ok": false, "error": ...}`; then both keep the connection open, and its end is
the signal that the other side is gone.

Guarantees: the leader is ready exactly while one live connection per worker
index 1..n-1 is held (a rejoining index replaces its old connection); a worker
is joined exactly while its connection to the leader is open, and otherwise
resolves the leader's address again (normal `getaddrinfo`) and reconnects every
`retry_s`, however long the leader takes to appear.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any

from modelplane_enginesim.config import Identity
from modelplane_enginesim.logs import log

RETRY_S = 0.5
HELLO_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Member:
    worker_index: int
    pod: str
    namespace: str
    ip: str

    def as_json(self) -> dict[str, Any]:
        return {
            "worker_index": self.worker_index,
            "pod": self.pod,
            "namespace": self.namespace,
            "ip": self.ip,
        }


def check_hello(line: bytes, group_size: int) -> Member:
    """The member a worker's hello line describes; ValueError saying what is wrong."""
    try:
        hello = json.loads(line)
    except ValueError:
        raise ValueError("hello is not JSON") from None
    if not isinstance(hello, dict):
        raise ValueError("hello is not a JSON object")
    size = hello.get("group_size", group_size)
    if size != group_size:
        raise ValueError(f"worker says group size {size}, leader has {group_size}")
    index = hello.get("worker_index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 < index < group_size:
        raise ValueError(f"worker_index {index!r} is not in 1..{group_size - 1}")
    return Member(
        index, str(hello.get("pod", "")), str(hello.get("namespace", "")), str(hello.get("ip", ""))
    )


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return address, default_port


class Leader:
    def __init__(self, pod: Identity, group_size: int) -> None:
        self.pod = pod
        self.group_size = group_size
        self.members: dict[int, tuple[Member, asyncio.StreamWriter]] = {}
        self._server: asyncio.Server | None = None

    @property
    def ready(self) -> bool:
        return len(self.members) == self.group_size - 1

    def reason(self) -> str:
        missing = [i for i in range(1, self.group_size) if i not in self.members]
        return (
            f"waiting for workers: {len(self.members)}/{self.group_size - 1} joined "
            f"(missing worker indexes {', '.join(map(str, missing))})"
        )

    def workers(self) -> list[dict[str, Any]]:
        return [self.members[i][0].as_json() for i in sorted(self.members)]

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for _, writer in self.members.values():
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _keepalive(writer)
        member: Member | None = None
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                line = await reader.readline()
            try:
                member = check_hello(line, self.group_size)
            except ValueError as error:
                log("group_reject", peer=_peer(writer), error=str(error))
                writer.write(json.dumps({"ok": False, "error": str(error)}).encode() + b"\n")
                await writer.drain()
                return
            old = self.members.get(member.worker_index)
            if old is not None:
                old[1].close()
            self.members[member.worker_index] = (member, writer)
            ack = {"ok": True, "leader": self.pod.qualified, "group_size": self.group_size}
            writer.write(json.dumps(ack).encode() + b"\n")
            await writer.drain()
            log(
                "group_join",
                worker_index=member.worker_index,
                pod=f"{member.namespace}/{member.pod}",
                ip=member.ip,
                joined=f"{len(self.members)}/{self.group_size - 1}",
            )
            while await reader.read(4096):
                pass
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            if member is not None:
                current = self.members.get(member.worker_index)
                if current is not None and current[1] is writer:
                    del self.members[member.worker_index]
                    log(
                        "group_leave",
                        worker_index=member.worker_index,
                        pod=f"{member.namespace}/{member.pod}",
                        joined=f"{len(self.members)}/{self.group_size - 1}",
                    )


class Worker:
    def __init__(
        self, pod: Identity, group_size: int, worker_index: int, leader_address: str, port: int
    ) -> None:
        self.pod = pod
        self.group_size = group_size
        self.worker_index = worker_index
        self.leader_address = leader_address
        self.host, self.port = split_address(leader_address, port)
        self.joined = False
        self.leader_ip: str | None = None
        self.last_error = "not connected yet"
        self._task: asyncio.Task[None] | None = None

    def reason(self) -> str:
        return f"not joined to leader {self.host}:{self.port}: {self.last_error}"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except (OSError, TimeoutError, ValueError) as error:
                message = _describe(error)
                if message != self.last_error or failures % 20 == 0:
                    log(
                        "group_connect_failed",
                        leader=f"{self.host}:{self.port}",
                        error=message,
                        attempts=failures + 1,
                    )
                self.last_error = message
                failures += 1
            await asyncio.sleep(RETRY_S)

    async def _connect(self) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
        """Resolve the leader afresh and connect to the first of its addresses that answers."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        failure: OSError = OSError("no address")
        for ip in dict.fromkeys(str(info[4][0]) for info in infos):
            try:
                async with asyncio.timeout(HELLO_TIMEOUT_S):
                    reader, writer = await asyncio.open_connection(ip, self.port)
                return ip, reader, writer
            except OSError as error:  # TimeoutError included
                failure = error
        raise failure

    async def _session(self) -> None:
        ip, reader, writer = await self._connect()
        try:
            _keepalive(writer)
            hello = {
                "worker_index": self.worker_index,
                "pod": self.pod.name,
                "namespace": self.pod.namespace,
                "ip": self.pod.ip,
                "group_size": self.group_size,
            }
            writer.write(json.dumps(hello).encode() + b"\n")
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                await writer.drain()
                ack = json.loads(await reader.readline() or b"null")
            if not isinstance(ack, dict) or not ack.get("ok"):
                error = ack.get("error") if isinstance(ack, dict) else "no answer"
                raise ValueError(f"leader refused: {error}")
            self.joined, self.leader_ip = True, ip
            log(
                "group_joined",
                leader=f"{self.host}:{self.port}",
                leader_ip=ip,
                leader_pod=ack.get("leader"),
                worker_index=self.worker_index,
            )
            while await reader.read(4096):
                pass
            self.last_error = "the leader closed the connection"
            log("group_lost_leader", leader=f"{self.host}:{self.port}")
        finally:
            self.joined = False
            writer.close()


def _describe(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return f"cannot resolve: {error.strerror}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _peer(writer: asyncio.StreamWriter) -> str | None:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if peer else None


def _keepalive(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
