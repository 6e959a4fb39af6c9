"""Starts the scaler inside endpoint-manager's event loop (`--scaler-address`).

`start_scaler` adds a watch cache of ModelServices (their selectors decide which
deployments a held request wakes), runs the scrape loop (`endpoint_manager.scrape`) over
the replicas and deployments of endpoint-manager's own cache, and serves
`ExternalScaler` and `Activation` (`endpoint_manager.scaler`) with the gRPC health
service on a thread-pool server: mutual TLS with the service's certificate flags, plain
only on loopback unless `--insecure`. ScaledObjects are read (GET, one at a time, kept
30 s) only for a trigger without `deployment` metadata.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from modelplane.cache import Cache
from modelplane.grpcutil import GrpcServer, start_server
from modelplane.grpcutil.tls import TlsFiles
from modelplane.kube import Kube
from modelplane.wellknown import API, Json

from endpoint_manager.controller import DEPLOYMENTS, REPLICAS
from endpoint_manager.scaler import (
    SERVICES,
    ActivationServicer,
    ScalerServicer,
    Targets,
    register,
)
from endpoint_manager.scalermetrics import Objects
from endpoint_manager.scalerstate import ScalerState
from endpoint_manager.scrape import EngineScraper

MODEL_SERVICES = f"{API}/modelservices"
SCALED_OBJECTS = "/apis/keda.sh/v1alpha1/namespaces/{namespace}/scaledobjects/{name}"
GRPC_WORKERS = 128
"""Server threads: each `external-push` trigger holds two (`StreamIsActive` and
`StreamMetricSpec`), an `external` trigger none."""
FETCH_TIMEOUT_S = 5.0


@dataclass
class Scaler:
    server: GrpcServer
    state: ScalerState
    scraper: EngineScraper
    tasks: tuple[asyncio.Task[Any], ...]


def start_scaler(
    address: str,
    tls: TlsFiles | None,
    allow_insecure: bool,
    kube: Kube,
    cache: Cache,
    http: httpx.AsyncClient,
) -> Scaler:
    """Call from the running event loop; `cache` is endpoint-manager's (it holds the
    ModelReplicas and ModelDeployments)."""
    loop = asyncio.get_running_loop()
    services = Cache(kube, [MODEL_SERVICES])
    state = ScalerState()

    def objects() -> Objects | None:
        if not (cache.synced and services.synced):
            return None
        deployments = {
            f"{d['metadata']['namespace']}/{d['metadata']['name']}": d
            for d in cache.items(DEPLOYMENTS)
        }
        return Objects(deployments, services.items(MODEL_SERVICES), cache.items(REPLICAS))

    def fetch(namespace: str, name: str) -> Json | None:
        path = SCALED_OBJECTS.format(namespace=namespace, name=name)
        return asyncio.run_coroutine_threadsafe(kube.get(path), loop).result(FETCH_TIMEOUT_S)

    scraper = EngineScraper(http, state, objects)
    server = start_server(
        address,
        register(ScalerServicer(state, Targets(fetch)), ActivationServicer(state)),
        SERVICES,
        tls=tls,
        allow_insecure=allow_insecure,
        max_workers=GRPC_WORKERS,
    )
    tasks = (loop.create_task(services.run()), loop.create_task(scraper.run()))
    return Scaler(server, state, scraper, tasks)
