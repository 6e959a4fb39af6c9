"""What every reconciling service does around its controller: identity, lease, endpoints, stop.

`run_controller` connects to the control cluster as the service's own identity,
runs leader election on the Lease `<namespace>/<service>`, the service's
`ReconcileLoop` (built by `make_loop` from the client and the elector), and the
status endpoints (`/metrics`, `/healthz`, `/readyz`), until SIGTERM or SIGINT or
`stop` is set; then it hands the Lease over at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable

from modelplane import statusserver
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop

log = logging.getLogger("modelplane.service")
MakeLoop = Callable[[Kube, LeaderElector], ReconcileLoop]


def add_controller_flags(
    parser: argparse.ArgumentParser, status_address: str, namespace_holds: str
) -> None:
    """The flags every reconciling service takes: `--kubeconfig`, `--namespace` (whose
    contents `namespace_holds` names), `--status-address` and `--log-level`."""
    parser.add_argument("--kubeconfig", help="the control cluster (default: in-cluster)")
    parser.add_argument("--namespace", default="modelplane-system", help=namespace_holds)
    parser.add_argument(
        "--status-address", default=status_address, help="/metrics, /healthz and /readyz"
    )
    parser.add_argument("--log-level", default="INFO")


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def run_controller(
    service: str,
    kubeconfig: str | None,
    namespace: str,
    status_address: str,
    make_loop: MakeLoop,
    stop: asyncio.Event | None = None,
) -> None:
    kube = await Kube.connect(kubeconfig, f"modelplane-{service}")
    identity = f"{socket.gethostname()}-{os.getpid()}"
    elector = LeaderElector(kube, namespace, service, identity)
    loop = make_loop(kube, elector)
    host, port = split_address(status_address)
    stop = stop or asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, stop.set)
    tasks = [
        asyncio.create_task(elector.run()),
        asyncio.create_task(loop.run()),
        asyncio.create_task(statusserver.serve(host, port, loop.readiness)),
    ]
    log.info("started", extra={"fields": {"service": service, "identity": identity}})
    await stop.wait()
    log.info("stopping", extra={"fields": {"service": service}})
    for task in tasks:
        task.cancel()
    await elector.release()
