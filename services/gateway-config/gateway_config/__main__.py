"""`modelplane-gateway-config` (or `python -m gateway_config`): run the service.

It reconciles InferenceGateways, ModelServices and ModelEndpoints on the control
cluster while it holds the leader Lease `<namespace>/gateway-config`, serves
`/metrics`, `/healthz` and `/readyz` on `--status-address` and (every copy) the
per-key counts the front door's key plugin reports, on `--api-key-address`
(`gateway_config.keyserver`; the keys are the Secrets of `--api-key-namespace`),
logging JSON lines to stderr until SIGTERM or SIGINT; then it hands the Lease over
at once. Exit status 2 when the command line is unusable (a listener port outside
1..65535, the hop port equal to the gateway port, an `--activator-url` that
cannot be a backend, `--settle-seconds` outside 0..600, or `--api-key-namespace` equal
to `--namespace`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from modelplane import logs
from modelplane.cache import Cache
from modelplane.kube import Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop
from modelplane.service import add_controller_flags, run_controller, split_address

from gateway_config import activation, handover, keys, keyserver, retry
from gateway_config.controller import RESYNC_S, SERVICE, GatewayConfig, path, watched_paths
from gateway_config.decide import Settings
from gateway_config.hop import DEFAULT_PORT as DEFAULT_HOP_PORT

log = logging.getLogger("gateway_config")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane-gateway-config", description=__doc__)
    add_controller_flags(p, "127.0.0.1:9093", "where the Gateway and the leader Lease live")
    p.add_argument(
        "--gateway-class",
        default="traefik",
        help="the front door's GatewayClass (controller traefik.io/gateway-controller)",
    )
    p.add_argument(
        "--gateway-port",
        type=int,
        default=80,
        help="the port of the Gateway's HTTP listener (an entry point of the Traefik install)",
    )
    p.add_argument(
        "--hop-port",
        type=int,
        default=DEFAULT_HOP_PORT,
        help="the port of the Gateway's `hop` listener, an entry point of the same Traefik "
        "install apart from --gateway-port: backends that are not h2c are reached through it "
        "(client -> web -> h2c -> hop -> backend)",
    )
    p.add_argument(
        "--https-port",
        type=int,
        default=443,
        help="the port of the Gateway's HTTPS listener, an entry point of its own, used when "
        "the InferenceGateway names a certificate (spec.tls.secretName)",
    )
    p.add_argument(
        "--backend-ca-configmap",
        metavar="NAME",
        help="a ConfigMap of --namespace whose ca.crt (PEM) https backends named by host are "
        "verified against instead of the system's CAs (default: the system's)",
    )
    p.add_argument(
        "--retries",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="retry a request that failed on one endpoint on another, through a Traefik "
        "Middleware per ModelService (needs Traefik's Kubernetes CRD provider and its CRDs)",
    )
    p.add_argument(
        "--retry-max-body-bytes",
        type=int,
        default=retry.UNBOUNDED_BODY,
        metavar="N",
        help="the most of a request body the retries hold in memory to replay it; a larger "
        "body is retried on connection errors only. Traefik allocates all N bytes for every "
        "request (1 MiB: +0.4 ms to the first token), so the default, -1, reads each body "
        "whole as it comes instead (a service with fallbacks reads whole bodies whatever "
        "this says: its failover link would refuse a larger one with 413)",
    )
    p.add_argument(
        "--api-key-address",
        default="127.0.0.1:9095",
        help="HOST:PORT where this copy receives the per-key counts of Traefik's API key plugin",
    )
    p.add_argument(
        "--api-key-url",
        help="the URL Traefik's key plugin reports its counts to (the chart: the Service's); "
        "default http://<--api-key-address>",
    )
    p.add_argument(
        "--activator-url",
        help="where the activator listens (http://HOST:PORT; the chart: its Service): a "
        "ModelService with spec.scaleToZero and no endpoint is routed there, so its requests "
        "are held until an endpoint is Ready (default: none, such a service answers 503)",
    )
    p.add_argument(
        "--api-key-namespace",
        default=keys.DEFAULT_NAMESPACE,
        help="the namespace of the Secrets labelled modelplane.ai/api-key (the callers' keys); "
        "one of its own, apart from --namespace, whose kubeconfig Secrets gateway-config "
        "must not be able to read",
    )
    p.add_argument(
        "--settle-seconds",
        type=int,
        default=handover.DEFAULT_SETTLE_S,
        help="how long a ModelService's new Middleware, Service or route exists before its "
        "route names it, and how long one no route names any more is kept (make before "
        "break, gateway_config.handover): more than Traefik's providersThrottleDuration "
        "(default 2 s) plus its watch delay",
    )
    return p


def start_key_server(address: str, cache: Cache) -> asyncio.Task[None]:
    """Every copy's key server (`gateway_config.keyserver`): the key plugin's counts, shown
    with the token of the InferenceGateway in `cache`."""
    gateways = path("InferenceGateway")
    server = keyserver.KeyServer(lambda: keys.counts_token(cache.items(gateways)))
    host, port = split_address(address)

    async def listen() -> None:
        try:
            await server.server.start(host, port)
        except OSError as error:  # the plugin then keeps its counts (and tries again)
            log.error("API key server cannot listen", extra={"fields": {
                "address": address, "error": str(error)}})  # fmt: skip

    return asyncio.create_task(listen())


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not 1 <= args.gateway_port <= 65535:
        log.error("bad --gateway-port", extra={"fields": {"port": args.gateway_port}})
        sys.exit(2)
    if not 1 <= args.hop_port <= 65535 or args.hop_port == args.gateway_port:
        log.error("bad --hop-port", extra={"fields": {"port": args.hop_port}})
        sys.exit(2)
    if not 1 <= args.https_port <= 65535 or args.https_port in (args.gateway_port, args.hop_port):
        log.error("bad --https-port", extra={"fields": {"port": args.https_port}})
        sys.exit(2)
    if args.activator_url is not None and (why := activation.check_url(args.activator_url)):
        log.error("bad --activator-url", extra={"fields": {"url": args.activator_url, "why": why}})
        sys.exit(2)
    if not 0 <= args.settle_seconds <= 600:
        log.error("bad --settle-seconds", extra={"fields": {"seconds": args.settle_seconds}})
        sys.exit(2)
    if args.retry_max_body_bytes < retry.UNBOUNDED_BODY or args.retry_max_body_bytes == 0:
        log.error("bad --retry-max-body-bytes: -1 (unbounded) or a positive number of bytes",
                  extra={"fields": {"bytes": args.retry_max_body_bytes}})  # fmt: skip
        sys.exit(2)
    if args.api_key_namespace == args.namespace:  # its kubeconfig Secrets would be readable
        log.error("bad --api-key-namespace: it must not be --namespace", extra={"fields": {
            "namespace": args.api_key_namespace}})  # fmt: skip
        sys.exit(2)
    settings = Settings(
        gateway_class=args.gateway_class, port=args.gateway_port, namespace=args.namespace,
        backend_ca=args.backend_ca_configmap, hop_port=args.hop_port,
        https_port=args.https_port, retries=args.retries,
        retry_max_body_bytes=args.retry_max_body_bytes,
        auth_url=args.api_key_url or f"http://{args.api_key_address}",
        key_namespace=args.api_key_namespace,
        activator_url=args.activator_url, settle_s=args.settle_seconds,
    )  # fmt: skip
    background: list[asyncio.Task[None]] = []

    def make_loop(kube: Kube, elector: LeaderElector) -> ReconcileLoop:
        cache = Cache(kube, watched_paths(settings))
        background.append(start_key_server(args.api_key_address, cache))
        controller = GatewayConfig(kube, elector, settings, cache)
        return ReconcileLoop(
            SERVICE,
            kube,
            cache.paths,
            controller.reconcile_all,
            elector,
            RESYNC_S,
            kind="ModelService",
            cache=cache,
        )

    asyncio.run(
        run_controller(SERVICE, args.kubeconfig, args.namespace, args.status_address, make_loop)
    )


if __name__ == "__main__":
    main()
