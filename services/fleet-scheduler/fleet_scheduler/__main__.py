"""``modelplane-fleet-scheduler`` (or ``python -m fleet_scheduler``): runs the service.

Serves ``FleetScheduler`` and the gRPC health service on ``--listen`` over the fleet
read from ``--fleet`` manifests, logging JSON lines to stderr, until SIGTERM or SIGINT,
then stops gracefully (health NOT_SERVING at once, in-flight calls get ``--grace``).

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

from modelplane.grpcutil import TlsFiles, start_server
from modelplane.grpcutil.server import InsecureAddressError
from modelplane.grpcutil.tls import TlsConfigError
from modelplane.logs import configure

from fleet_scheduler.server import SERVICE_NAME, register
from fleet_scheduler.snapshot import SnapshotLoadError, StaticSnapshot

DEFAULT_LISTEN = "127.0.0.1:50061"
EXIT_OK = 0
EXIT_CONFIG = 2

log = logging.getLogger("fleet_scheduler")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelplane-fleet-scheduler", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        help=f"host:port (default {DEFAULT_LISTEN}; port 0 picks one)",
    )
    p.add_argument(
        "--fleet",
        action="append",
        default=[],
        metavar="PATH",
        help="manifest file or directory making up the observed fleet (repeatable)",
    )
    p.add_argument("--tls-cert", help="PEM server certificate (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument(
        "--tls-ca", help="PEM CA bundle; when set, clients must present a certificate it signed"
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain (unencrypted) gRPC on a non-loopback address",
    )
    p.add_argument(
        "--grace", type=float, default=5.0, help="seconds in-flight calls get at shutdown"
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure(args.log_level)
    try:
        snapshot = StaticSnapshot.load(args.fleet)
    except SnapshotLoadError as exc:
        for error in exc.errors:
            log.error("cannot load fleet manifest", extra={"fields": {"why": error}})
        return EXIT_CONFIG
    log.info(
        "fleet loaded",
        extra={"fields": {"paths": args.fleet, "objects": len(snapshot.objects())}},
    )
    try:
        tls = TlsFiles.from_paths(args.tls_cert, args.tls_key, args.tls_ca)
        server = start_server(
            args.listen,
            register(snapshot),
            [SERVICE_NAME],
            tls=tls,
            allow_insecure=args.insecure,
        )
    except (TlsConfigError, InsecureAddressError, OSError) as exc:
        log.error("cannot serve", extra={"fields": {"address": args.listen, "why": str(exc)}})
        return EXIT_CONFIG

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
