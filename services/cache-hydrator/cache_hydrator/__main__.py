"""`modelplane-cache-hydrator`: run the ModelCache controller.

While it holds the leader Lease it stages every ModelCache on the clusters of its
footprint through cluster-provisioner's `Fleet` API at `--fleet` (mutual TLS with
`--tls-cert/--tls-key/--tls-ca`): a ReadWriteMany claim, the token's copy and a
hydration Job running `modelplane-hydrate` from `--hydrate-image` against `--hub`, and
mirrors each job's progress into the cache's status. Exit status 2 when the TLS files
cannot be read or plain gRPC is asked for off loopback.
"""

from __future__ import annotations

import argparse
import logging

from modelplane import logs
from modelplane.cache import Cache
from modelplane.fleetclient import FleetClient, add_client_flags, run_client_service
from modelplane.grpcutil.tls import TlsFiles
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop
from modelplane.service import add_controller_flags

from cache_hydrator.controller import RESYNC_S, SERVICE, CacheHydrator, watched_paths
from cache_hydrator.render import JobConfig

DEFAULT_HUB = "https://huggingface.co"
DEFAULT_IMAGE = "modelplane/modelplane:latest"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane-cache-hydrator", description=__doc__)
    add_controller_flags(p, "127.0.0.1:9094", "where the leader Lease lives")
    add_client_flags(p)
    p.add_argument(
        "--hydrate-image",
        default=DEFAULT_IMAGE,
        help=f"the image whose modelplane-hydrate the Jobs run (default {DEFAULT_IMAGE})",
    )
    p.add_argument(
        "--hub", default=DEFAULT_HUB, help=f"HF_ENDPOINT of the Jobs (default {DEFAULT_HUB})"
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tls = TlsFiles.from_paths(args.tls_cert, args.tls_key, args.tls_ca)
    job = JobConfig(image=args.hydrate_image, hub_endpoint=args.hub)

    def make_loop(kube: Kube, elector: LeaderElector) -> ReconcileLoop:
        # the aio channel belongs to the running event loop: made here, not before
        fleet = FleetClient.connect(args.fleet, f"modelplane-{SERVICE}", tls, args.insecure)
        cache = Cache(kube, watched_paths())
        hydrator = CacheHydrator(kube, fleet, elector, cache, job)
        return ReconcileLoop(
            SERVICE, kube, cache.paths, hydrator.reconcile_all, elector, RESYNC_S, cache=cache
        )

    run_client_service(SERVICE, args, make_loop)


if __name__ == "__main__":
    main()
