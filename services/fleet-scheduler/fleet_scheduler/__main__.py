"""``modelplane-fleet-scheduler`` (or ``python -m fleet_scheduler``): runs the service.

Serves ``FleetScheduler`` and the gRPC health service on ``--listen``, logging JSON
lines to stderr, until SIGTERM or SIGINT, then stops gracefully (health NOT_SERVING
at once, in-flight calls get ``--grace``). The fleet it sees is either read once from
``--fleet`` manifests, or, with ``--kubeconfig`` (or ``--in-cluster``), the live
control cluster: then it also reconciles (creates and deletes ModelReplicas, writes
ModelDeployment status) while it holds the leader Lease, and serves ``/metrics``,
``/healthz`` and ``/readyz`` on ``--status-address``.

Exit status: 0 after a clean stop; 2 when the configuration is unusable (unreadable
fleet manifests, bad TLS files, an address it cannot bind or may not serve plainly).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from modelplane.grpcutil import start_server
from modelplane.grpcutil.flags import add_server_flags, server_tls
from modelplane.grpcutil.server import InsecureAddressError
from modelplane.grpcutil.tls import TlsConfigError
from modelplane.logs import configure

from fleet_scheduler.server import SERVICE_NAME, register
from fleet_scheduler.snapshot import (
    LiveSnapshot,
    SnapshotLoadError,
    SnapshotSource,
    StaticSnapshot,
)

DEFAULT_LISTEN = "127.0.0.1:50061"
EXIT_OK = 0
EXIT_CONFIG = 2

log = logging.getLogger("fleet_scheduler")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelplane-fleet-scheduler", description=__doc__.split("\n")[0]
    )
    add_server_flags(p, DEFAULT_LISTEN)
    p.add_argument(
        "--fleet",
        action="append",
        default=[],
        metavar="PATH",
        help="manifest file or directory making up the observed fleet (repeatable)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    live = p.add_argument_group("live mode (reconcile the control cluster)")
    live.add_argument("--kubeconfig", help="the control cluster, as this service's identity")
    live.add_argument(
        "--in-cluster", action="store_true", help="use the pod's service account instead"
    )
    live.add_argument("--namespace", default="modelplane-system", help="where the Lease lives")
    live.add_argument("--status-address", default="127.0.0.1:9091", help="/metrics and health")
    return p


def run_live(args: argparse.Namespace, server: Any) -> int:
    import asyncio

    from modelplane.cache import Cache
    from modelplane.kube import Kube
    from modelplane.leader import LeaderElector
    from modelplane.loop import ReconcileLoop
    from modelplane.service import run_controller

    from fleet_scheduler.changes import Relevance
    from fleet_scheduler.controller import RESYNC_S, SERVICE, Scheduler, watched_paths

    logging.getLogger("httpx").setLevel(logging.WARNING)

    def make_loop(kube: Kube, elector: LeaderElector) -> ReconcileLoop:
        cache = Cache(kube, watched_paths())
        scheduler = Scheduler(kube, elector, LIVE, cache)
        return ReconcileLoop(
            SERVICE,
            kube,
            cache.paths,
            scheduler.reconcile_all,
            elector,
            RESYNC_S,
            keys=Relevance(cache).keys,
            kind="ModelDeployment",
            cache=cache,
        )

    asyncio.run(
        run_controller(SERVICE, args.kubeconfig, args.namespace, args.status_address, make_loop)
    )
    server.stop(args.grace)
    return EXIT_OK


LIVE = LiveSnapshot()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure(args.log_level)
    live = bool(args.kubeconfig or args.in_cluster)
    if live and args.fleet:
        log.error("--fleet and --kubeconfig/--in-cluster exclude each other")
        return EXIT_CONFIG
    source: SnapshotSource
    try:
        source = LIVE if live else StaticSnapshot.load(args.fleet)
    except SnapshotLoadError as exc:
        for error in exc.errors:
            log.error("cannot load fleet manifest", extra={"fields": {"why": error}})
        return EXIT_CONFIG
    if not live:
        log.info(
            "fleet loaded",
            extra={"fields": {"paths": args.fleet, "objects": len(source.objects())}},
        )
    try:
        tls = server_tls(args)
        server = start_server(
            args.listen,
            register(source),
            [SERVICE_NAME],
            tls=tls,
            allow_insecure=args.insecure,
        )
    except (TlsConfigError, InsecureAddressError, OSError) as exc:
        log.error("cannot serve", extra={"fields": {"address": args.listen, "why": str(exc)}})
        return EXIT_CONFIG

    if live:
        log.info("serving", extra={"fields": {"address": server.address, "service": SERVICE_NAME}})
        return run_live(args, server)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("serving", extra={"fields": {"address": server.address, "service": SERVICE_NAME}})
    while not stop.wait(1.0):
        pass
    server.stop(args.grace)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
