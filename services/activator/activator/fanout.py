"""Sending each held-request report to every copy of the scaler.

endpoint-manager runs several copies (the chart: two) and each keeps the held
reports it receives itself; KEDA may ask any copy. So the activator sends every
report to every copy: before each report it resolves the peers' host name (the
chart's headless Service `endpoint-manager-peers`, one address per ready copy;
without one, `--scaler`'s own host) and calls `ReportHeld` on each address,
verifying each copy's certificate against `--scaler`'s host name, not the
address. A report counts as sent only when every copy took it (the reporter
sends again at its next tick otherwise). Channels of addresses that went away
are closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class Channel(Protocol):
    """What the fan-out needs of a gRPC aio channel."""

    async def close(self) -> None: ...


Dial = Callable[[str], tuple[Channel, Any]]
"""Opens (channel, Activation stub) to `ip:port`, checking the peer as the scaler's name."""
Resolve = Callable[[str, int], Awaitable[list[str]]]


def address_target(address: str, port: int) -> str:
    """`ip:port`, IPv6 in brackets."""
    return (
        f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else f"{address}:{port}"
    )


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, sorted, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class FanOutSender:
    """A `Sender` (see `report`) that calls `ReportHeld` on every resolved copy."""

    def __init__(self, peers: str, port: int, dial: Dial, resolver: Resolve = resolve) -> None:
        self.peers = peers
        self.port = port
        self.dial = dial
        self.resolver = resolver
        self.open: dict[str, tuple[Channel, Any]] = {}

    async def ReportHeld(self, request: Any, timeout: float) -> None:  # noqa: N802 (gRPC's name)
        addresses = await self.resolver(self.peers, self.port)
        if not addresses:
            raise ConnectionError(f"{self.peers} resolves to no address")
        for gone in set(self.open) - set(addresses):
            channel, _ = self.open.pop(gone)
            await channel.close()
        for address in addresses:
            if address not in self.open:
                self.open[address] = self.dial(address_target(address, self.port))
        calls = [self.open[a][1].ReportHeld(request, timeout=timeout) for a in addresses]
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [
            (a, r) for a, r in zip(addresses, results, strict=True) if isinstance(r, BaseException)
        ]
        if failed:
            address, error = failed[0]
            raise ConnectionError(
                f"{len(failed)} of {len(addresses)} copies refused ({address}: {error!r})"
            )
