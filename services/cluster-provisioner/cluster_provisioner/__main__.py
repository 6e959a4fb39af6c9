"""`modelplane-cluster-provisioner`: run the service."""

from __future__ import annotations

import argparse
import asyncio
import logging

from modelplane import logs
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop
from modelplane.service import run_controller

from cluster_provisioner.controller import RESYNC_S, SERVICE, Provisioner, watched_paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelplane-cluster-provisioner", description=__doc__)
    parser.add_argument("--kubeconfig", help="the control cluster (default: in-cluster)")
    parser.add_argument(
        "--namespace",
        default="modelplane-system",
        help="where kubeconfig Secrets and the leader Lease live",
    )
    parser.add_argument(
        "--status-address", default="127.0.0.1:9090", help="/metrics, /healthz and /readyz"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    def make_loop(kube: Kube, elector: LeaderElector) -> ReconcileLoop:
        provisioner = Provisioner(kube, args.namespace, elector)
        paths = watched_paths(args.namespace)
        return ReconcileLoop(SERVICE, kube, paths, provisioner.reconcile_all, elector, RESYNC_S)

    asyncio.run(
        run_controller(SERVICE, args.kubeconfig, args.namespace, args.status_address, make_loop)
    )


if __name__ == "__main__":
    main()
