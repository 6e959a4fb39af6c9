"""gateway-config's key server: answers Traefik's `forwardAuth` for every ModelService route.

Every copy (leader or not) runs one: a `Cache` (list + watch) of the Secrets of
the key namespace (`--api-key-namespace`, `DEFAULT_NAMESPACE`; never the namespace
of the clusters' kubeconfig Secrets) labelled `keys.LABEL`, whose every change rebuilds the
key table at once (so a deleted Secret stops working as soon as its watch event
arrives), and an HTTP server (`modelplane.httpserver`) on `--api-key-address`
answering `<any method> /<namespace>/<service>` with `keys.check`'s verdict: 200
with the key id in `keys.KEY_ID_HEADER`, else 401/403 with the OpenAI error
body, which Traefik hands to the client as is. Counts go to
`modelplane_gateway_api_key_requests_total{key_id, service, result}` (the key
id is the Secret's name). No key, and no hash of one, is ever logged; a Secret
left out is logged by name and field.
"""

from __future__ import annotations

import logging

from modelplane.cache import Cache
from modelplane.httpserver import HttpServer, Request, Response
from modelplane.kube import Json
from prometheus_client import Counter

from gateway_config import keys

log = logging.getLogger("gateway_config")

REQUESTS = Counter(
    "modelplane_gateway_api_key_requests_total",
    "Requests checked for an API key at the front door, by key id (the Secret's name; "
    "empty when no key was known) and result (accepted, missing, unknown, forbidden).",
    ["key_id", "service", "result"],
)


DEFAULT_NAMESPACE = "modelplane-api-keys"


def secrets_path(namespace: str) -> str:
    """The labelled Secrets of the key namespace (the only Secrets it reads)."""
    return f"/api/v1/namespaces/{namespace}/secrets?labelSelector={keys.LABEL}"


class KeyServer:
    """The key table, kept current from a cache of the labelled Secrets, and its answers."""

    def __init__(self, cache: Cache, path: str) -> None:
        self.cache = cache
        self.path = path
        self.table = keys.Table()
        cache.listeners.append(self._changed)
        self.server = HttpServer(self.answer, keepalive_s=120.0)

    def _changed(self, path: str, _obj: Json) -> None:
        if path != self.path:
            return
        self.table = keys.table(self.cache.items(self.path))
        for problem in self.table.problems:
            log.warning("API key left out", extra={"fields": {"problem": problem}})

    async def answer(self, request: Request) -> Response:
        service = request.path.strip("/")
        verdict = keys.check(self.table, request.headers, service)
        REQUESTS.labels(verdict.key_id, service, verdict.result).inc()
        if verdict.status == 200:
            return Response(200, headers=[(keys.KEY_ID_HEADER, verdict.key_id)])
        return Response(verdict.status, verdict.body(service), "application/json")
