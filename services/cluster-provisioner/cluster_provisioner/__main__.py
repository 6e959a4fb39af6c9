"""`modelplane-cluster-provisioner`: run the service.

It reconciles InferenceClusters while it holds the leader Lease, and every copy
serves the `Fleet` gRPC API (plus gRPC health) on `--listen`, with mutual TLS
when given `--tls-cert/--tls-key/--tls-ca`. Exit status 2 when the gRPC server
cannot start (bad TLS files, an address it cannot bind or may not serve plainly).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from modelplane import logs
from modelplane.cache import Cache
from modelplane.grpcutil import start_server
from modelplane.grpcutil.flags import add_server_flags, server_tls
from modelplane.grpcutil.server import InsecureAddressError
from modelplane.grpcutil.tls import TlsConfigError
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop
from modelplane.service import add_controller_flags, run_controller

from cluster_provisioner.controller import (
    RESYNC_S,
    SERVICE,
    WORKERS,
    Provisioner,
    watched_paths,
)
from cluster_provisioner.fleetapi import SERVICE_NAME, Connections, FleetServicer, register

DEFAULT_LISTEN = "127.0.0.1:50071"
log = logging.getLogger("cluster_provisioner")

GRPC_WORKERS = 64
"""Server threads: each open `Fleet.Watch` stream holds one (endpoint-manager keeps one per
kind it owns on each cluster it serves), so there are enough left for unary calls."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane-cluster-provisioner", description=__doc__)
    add_controller_flags(p, "127.0.0.1:9090", "where kubeconfig Secrets and the leader Lease live")
    add_server_flags(p, DEFAULT_LISTEN)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    servers: list[Any] = []

    def make_loop(kube: Kube, elector: LeaderElector) -> ReconcileLoop:
        cache = Cache(kube, watched_paths(args.namespace))
        connections = Connections(kube, args.namespace, cache)
        servicer = FleetServicer(connections, asyncio.get_running_loop())
        servers.append(
            start_server(
                args.listen,
                register(servicer),
                [SERVICE_NAME],
                tls=server_tls(args),
                allow_insecure=args.insecure,
                max_workers=GRPC_WORKERS,
            )
        )
        provisioner = Provisioner(kube, args.namespace, elector, cache)
        loop = ReconcileLoop(
            SERVICE,
            kube,
            cache.paths,
            None,
            elector,
            RESYNC_S,
            reconcile=provisioner.reconcile_key,
            keys=provisioner.keys,
            kind="InferenceCluster",
            workers=WORKERS,
            cache=cache,
        )
        provisioner.views.on_change = lambda name: loop.enqueue((name,))
        return loop

    try:
        asyncio.run(
            run_controller(SERVICE, args.kubeconfig, args.namespace, args.status_address, make_loop)
        )
    except (TlsConfigError, InsecureAddressError, OSError) as error:
        log.error("cannot serve", extra={"fields": {"address": args.listen, "why": str(error)}})
        sys.exit(2)
    finally:
        for server in servers:
            server.stop(args.grace)


if __name__ == "__main__":
    main()
