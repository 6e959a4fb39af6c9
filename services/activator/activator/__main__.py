"""`modelplane-activator` (or `python -m activator`): hold requests of ModelServices at zero.

gateway-config routes a ModelService with `spec.scaleToZero` here while it has
no endpoint (its `--activator-url`). The activator listens on `--listen`,
watches ModelServices and ModelEndpoints on the control cluster
(`--kubeconfig`, default in-cluster), holds each request until an endpoint of
its service is Ready, then forwards it and relays the answer; it reports what
it holds to the scaler's `Activation` API at `--scaler` (endpoint-manager's
scaler port; mutual TLS with `--tls-cert/--tls-key/--tls-ca`; without
`--scaler` nothing is reported and only a replica started some other way
wakes the service). `/metrics`, `/healthz` and `/readyz` on `--status-address`;
JSON log lines on stderr until SIGTERM or SIGINT. Exit status 2 when the
command line is unusable, naming the flag.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any

from modelplane import logs
from modelplane.grpcutil import TlsFiles, is_loopback
from modelplane.grpcutil.client import dial_aio
from modelplane.grpcutil.tls import TlsConfigError
from modelplane.service import split_address

from activator.app import Config, serve
from activator.fanout import FanOutSender
from activator.report import DEFAULT_INTERVAL_S

log = logging.getLogger("activator")
FIELD_MANAGER = "modelplane-activator"
ACTIVATION = "modelplane.activation.v1.Activation"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane-activator", description=__doc__)
    p.add_argument("--listen", default="0.0.0.0:8090", help="host:port of the held requests")
    p.add_argument("--status-address", default="0.0.0.0:9096", help="/metrics, /healthz, /readyz")
    p.add_argument("--kubeconfig", help="the control cluster (default: in-cluster)")
    p.add_argument("--scaler", help="host:port of the Activation API (endpoint-manager's scaler)")
    p.add_argument(
        "--scaler-peers",
        help="a host name resolving to every copy of the scaler (a headless Service); each"
        " report goes to each (default: --scaler's host)",
    )
    p.add_argument("--tls-cert", help="PEM client certificate for --scaler (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--tls-ca", help="PEM CA bundle the scaler's certificate chains to")
    p.add_argument(
        "--insecure", action="store_true", help="allow plain gRPC to a non-loopback --scaler"
    )
    p.add_argument(
        "--name",
        default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="this activator in its reports (default: $POD_NAME or the host name)",
    )
    p.add_argument(
        "--report-interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        help="seconds between reports while any request is held (at most 5)",
    )
    p.add_argument("--max-body-mib", type=float, default=64.0, help="larger request bodies: 413")
    p.add_argument("--log-level", default="INFO")
    return p


def config(args: argparse.Namespace) -> Config:
    """The settings from the flags; ValueError naming the flag at fault."""
    if not 0 < args.report_interval <= 5:
        raise ValueError("--report-interval: must be above 0 and at most 5 seconds")
    if not args.max_body_mib > 0:
        raise ValueError("--max-body-mib: must be above 0")
    addresses = {}
    for flag, value in (("--listen", args.listen), ("--status-address", args.status_address)):
        try:
            addresses[flag] = split_address(value)
        except ValueError:
            raise ValueError(f"{flag}: {value!r} is not host:port") from None
    (host, port), (status_host, status_port) = addresses["--listen"], addresses["--status-address"]
    return Config(
        host=host, port=port, status_host=status_host, status_port=status_port, name=args.name,
        report_interval_s=args.report_interval, max_body_bytes=int(args.max_body_mib * 2**20),
    )  # fmt: skip


def scaler_stub(args: argparse.Namespace) -> Any | None:
    """The `Activation` sender for `--scaler` (None without it): every report goes to every
    address `--scaler-peers` (default: `--scaler`'s host) resolves to, each peer checked
    against `--scaler`'s host name; raises naming the problem."""
    if args.scaler is None:
        return None
    from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2_grpc

    host, port = split_address(args.scaler)
    tls = TlsFiles.from_paths(args.tls_cert, args.tls_key, args.tls_ca)
    if tls is None and not args.insecure and not is_loopback(args.scaler):
        raise ValueError(f"refusing plain (insecure) gRPC to {args.scaler}: give TLS files")
    name = [("grpc.ssl_target_name_override", host), ("grpc.default_authority", host)]

    def dial(target: str) -> tuple[Any, Any]:
        channel = dial_aio(
            target,
            services=(ACTIVATION,),
            tls=tls,
            allow_insecure=True,
            options=name if tls else (),
        )
        return channel, activation_pb2_grpc.ActivationStub(channel)

    return FanOutSender(args.scaler_peers or host, port, dial)


async def _run(settings: Config, args: argparse.Namespace) -> None:
    from modelplane.kube import Kube

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        stub = scaler_stub(args)  # the aio channel belongs to the running loop
    except (TlsConfigError, ValueError) as error:
        log.error("bad --scaler", extra={"fields": {"scaler": args.scaler, "why": str(error)}})
        sys.exit(2)
    if stub is None:
        log.warning("no --scaler: held requests are not reported")
    kube = await Kube.connect(args.kubeconfig, FIELD_MANAGER)
    await serve(settings, stop, kube, stub)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = config(args)
    except ValueError as error:
        log.error("bad command line", extra={"fields": {"error": str(error)}})
        sys.exit(2)
    asyncio.run(_run(settings, args))


if __name__ == "__main__":
    main()
