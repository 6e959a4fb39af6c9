"""`modelplane-endpoint-manager`: run the service.

While it holds the leader Lease it realizes every ModelReplica on its cluster
through cluster-provisioner's `Fleet` API at `--fleet` (mutual TLS with
`--tls-cert/--tls-key/--tls-ca`), reports the replicas' Synced and Ready
conditions and publishes one ModelEndpoint per Ready replica. With
`--scaler-address`, every copy also serves KEDA's external scaler and the
activator's `Activation` API there (`endpoint_manager.scalerserve`), with the same
certificate. Exit status 2 when the TLS files cannot be read, plain gRPC is asked
for off loopback, or the scaler address cannot be served.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, NoReturn

import httpx
from modelplane import logs
from modelplane.cache import Cache
from modelplane.fleetclient import FleetClient, add_client_flags, run_client_service
from modelplane.grpcutil.tls import TlsFiles, is_loopback
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop
from modelplane.service import add_controller_flags

from endpoint_manager.controller import RESYNC_S, SERVICE, EndpointManager, watched_paths
from endpoint_manager.health import Prober
from endpoint_manager.scalerserve import Scaler, start_scaler
from endpoint_manager.workload import DEFAULT_ROUTER_IMAGE

GRACE_S = 2.0
"""Seconds the scaler's in-flight calls get at shutdown."""


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
    p.add_argument(
        "--scaler-address",
        default="",
        help="host:port where KEDA's ExternalScaler and the activator's Activation API are "
        "served (mutual TLS with --tls-cert/--tls-key/--tls-ca; plain only on loopback "
        "unless --insecure); empty (default): not served",
    )
    return p


def refuse(why: str) -> NoReturn:
    fields: dict[str, Any] = {"why": why}
    logging.getLogger("endpoint_manager").error("cannot serve the scaler", extra={"fields": fields})
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tls = TlsFiles.from_paths(args.tls_cert, args.tls_key, args.tls_ca)
    scalers: list[Scaler] = []
    if (
        args.scaler_address
        and tls is None
        and not (args.insecure or is_loopback(args.scaler_address))
    ):
        refuse("plain gRPC off loopback: give --tls-cert/--tls-key/--tls-ca or --insecure")

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
        if args.scaler_address:
            scalers.append(start_scaler(args.scaler_address, tls, args.insecure, kube, cache, http))
        return loop

    try:
        run_client_service(SERVICE, args, make_loop)
    except OSError as error:
        refuse(str(error))
    finally:
        for scaler in scalers:
            scaler.server.stop(GRACE_S)


if __name__ == "__main__":
    main()
