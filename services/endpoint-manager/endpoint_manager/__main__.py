"""`modelplane-endpoint-manager`: run the service.

While it holds the leader Lease it realizes every ModelReplica on its cluster
through cluster-provisioner's `Fleet` API at `--fleet` (mutual TLS with
`--tls-cert/--tls-key/--tls-ca`), reports the replicas' Synced and Ready
conditions and publishes one ModelEndpoint per Ready replica. Exit status 2
when the TLS files cannot be read or plain gRPC is asked for off loopback.
"""

from __future__ import annotations

import argparse
import logging

import httpx
from modelplane import logs
from modelplane.cache import Cache
from modelplane.fleetclient import FleetClient, add_client_flags, run_client_service
from modelplane.grpcutil.tls import TlsFiles
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop
from modelplane.service import add_controller_flags

from endpoint_manager.controller import RESYNC_S, SERVICE, EndpointManager, watched_paths
from endpoint_manager.health import Prober
from endpoint_manager.workload import DEFAULT_ROUTER_IMAGE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane-endpoint-manager", description=__doc__)
    add_controller_flags(p, "127.0.0.1:9092", "where the leader Lease lives")
    add_client_flags(p)
    p.add_argument(
        "--router-image",
        default=DEFAULT_ROUTER_IMAGE,
        help="the image PrefillDecode replicas' router runs (modelplane-pd-router; the chart "
        f"sets the control plane's own image; default {DEFAULT_ROUTER_IMAGE})",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tls = TlsFiles.from_paths(args.tls_cert, args.tls_key, args.tls_ca)

    def make_loop(kube: Kube, elector: LeaderElector) -> ReconcileLoop:
        # the aio channel belongs to the running event loop: made here, not before
        fleet = FleetClient.connect(args.fleet, f"modelplane-{SERVICE}", tls, args.insecure)
        http = httpx.AsyncClient(trust_env=False)
        cache = Cache(kube, watched_paths())
        manager = EndpointManager(
            kube, fleet, elector, Prober(http), cache, router_image=args.router_image
        )
        loop = ReconcileLoop(
            SERVICE, kube, cache.paths, manager.reconcile_all, elector, RESYNC_S, cache=cache
        )
        manager.wake = loop.trigger  # a change on a cluster runs a pass at once
        return loop

    run_client_service(SERVICE, args, make_loop)


if __name__ == "__main__":
    main()
