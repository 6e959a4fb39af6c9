"""Every held-request report reaches every copy of the scaler (`activator.fanout`).

Two real gRPC servers (`ActivationDouble`, recording reports) on one port of two
loopback addresses stand in for two endpoint-manager copies; the name resolution
that a headless Service gives is a test double returning those addresses."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from activator.fanout import FanOutSender, address_target
from activator.holding import HeldService
from activator.report import report
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2, activation_pb2_grpc


class ActivationDouble(activation_pb2_grpc.ActivationServicer):
    """One scaler copy's Activation API: records each report as {service: held}."""

    def __init__(self) -> None:
        self.reports: list[dict[str, int]] = []

    async def ReportHeld(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC's name)
        self.reports.append({f"{s.namespace}/{s.service}": s.held for s in request.services})
        return activation_pb2.HeldReportAck()


def test_ipv6_addresses_are_bracketed() -> None:
    assert address_target("10.0.0.7", 50081) == "10.0.0.7:50081"
    assert address_target("fd00::7", 50081) == "[fd00::7]:50081"


async def _servers() -> tuple[int, list[tuple[Any, ActivationDouble]]]:
    servers = []
    port = 0
    for address in ("127.0.0.1", "127.0.0.2"):
        double = ActivationDouble()
        server = grpc.aio.server()
        activation_pb2_grpc.add_ActivationServicer_to_server(double, server)
        port = server.add_insecure_port(f"{address}:{port}")
        await server.start()
        servers.append((server, double))
    return port, servers


def test_a_report_reaches_every_resolved_copy_and_a_copy_gone_is_dropped() -> None:
    async def scenario() -> None:
        port, servers = await _servers()
        resolved = ["127.0.0.1", "127.0.0.2"]
        opened: list[str] = []

        async def resolver(host: str, wanted_port: int) -> list[str]:
            assert (host, wanted_port) == ("endpoint-manager-peers", port)
            return list(resolved)

        def dial(target: str) -> tuple[Any, Any]:
            opened.append(target)
            channel = grpc.aio.insecure_channel(target)
            return channel, activation_pb2_grpc.ActivationStub(channel)

        sender = FanOutSender("endpoint-manager-peers", port, dial, resolver)
        held = [HeldService(namespace="ml", service="qwen", held=2, oldest_wait_s=1.5)]
        await sender.ReportHeld(report("a1", held), timeout=5)
        assert [d.reports for _, d in servers] == [[{"ml/qwen": 2}], [{"ml/qwen": 2}]]
        resolved.remove("127.0.0.1")
        await sender.ReportHeld(report("a1", []), timeout=5)
        assert [d.reports[-1] for _, d in servers] == [{"ml/qwen": 2}, {}]
        assert sorted(sender.open) == ["127.0.0.2"]
        assert opened == [f"127.0.0.1:{port}", f"127.0.0.2:{port}"]
        resolved.append("127.0.0.1")
        await servers[0][0].stop(0)
        with pytest.raises(ConnectionError, match="1 of 2 copies refused"):
            await sender.ReportHeld(report("a1", held), timeout=2)
        assert servers[1][1].reports[-1] == {"ml/qwen": 2}
        for channel, _ in sender.open.values():
            await channel.close()
        await servers[1][0].stop(0)

    asyncio.run(scenario())
