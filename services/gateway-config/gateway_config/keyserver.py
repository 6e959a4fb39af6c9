"""gateway-config's key server: receives the per-key counts of the front door's key plugin.

The API key check runs inside Traefik (`gateway_config.plugin`, configured per
ModelService by `gateway_config.keys.plugin_spec`), which cannot export metrics of
its own: every `keys.COUNTS_SECONDS` the plugin POSTs what it counted since its
last report to `keys.COUNTS_PATH` here, a JSON list of `{"key_id", "service",
"result", "count"}`, and this server adds each to
`modelplane_gateway_api_key_requests_total{key_id, service, result}` (the key id
is the Secret's name; empty when no key was known). Every copy (leader or not)
runs one on `--api-key-address` (`modelplane.httpserver`); whichever copy a
report reaches counts it, so the fleet's figure is the sum over copies. A report
counts only with `Authorization: Bearer <keys.counts_token>` (rendered into the
plugin's Middleware; every copy derives it from the InferenceGateway in its
cache), compared in constant time: without it, or before the InferenceGateway is
known, the answer is 401 and nothing is counted, so whoever reaches the port
cannot make up counts. An answer other than 204 (a 401, or a malformed report:
400 naming the entry and field) makes the plugin keep its counts for the next
report. No key, and no hash of one, ever reaches it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from modelplane.httpserver import HttpServer, Request, Response, json_response
from prometheus_client import Counter

from gateway_config import keys

REQUESTS = Counter(
    "modelplane_gateway_api_key_requests_total",
    "Requests checked for an API key at the front door, by key id (the Secret's name; "
    "empty when no key was known) and result (accepted, missing, unknown, forbidden).",
    ["key_id", "service", "result"],
)


def parse(body: bytes) -> list[tuple[str, str, str, int]]:
    """The (key id, service, result, count) rows of a report; ValueError names what is wrong."""
    try:
        rows: Any = json.loads(body)
    except ValueError as error:
        raise ValueError(f"the report is not JSON: {error}") from None
    if not isinstance(rows, list):
        raise ValueError("the report must be a JSON list")
    found = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"entry {i} must be an object")
        for name in ("key_id", "service", "result"):
            if not isinstance(row.get(name), str):
                raise ValueError(f"entry {i}: {name} must be a string")
        if row["result"] not in keys.RESULTS:
            raise ValueError(f"entry {i}: result must be one of {', '.join(keys.RESULTS)}")
        count = row.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"entry {i}: count must be a positive integer")
        found.append((row["key_id"], row["service"], row["result"], count))
    return found


def authorized(request: Request, token: str) -> bool:
    """Whether `request` shows `token` as `Authorization: Bearer` (constant time; never
    with no token known)."""
    shown = request.header(b"authorization") or b""
    return bool(token) and hmac.compare_digest(shown, f"Bearer {token}".encode())


class KeyServer:
    """The listener the key plugin reports its counts to; `token()` is the one reports must
    show (`keys.counts_token` of the InferenceGateways now cached)."""

    def __init__(self, token: Callable[[], str]) -> None:
        self.token = token
        self.server = HttpServer(self.answer, keepalive_s=120.0)

    async def answer(self, request: Request) -> Response:
        if request.path != keys.COUNTS_PATH:
            return json_response(404, {"error": f"no such path {request.path}"})
        if request.method != "POST":
            return json_response(405, {"error": f"{keys.COUNTS_PATH} takes POST"})
        if not authorized(request, self.token()):
            return json_response(
                401, {"error": f"{keys.COUNTS_PATH} needs the key plugin's counts token"}
            )
        try:
            rows = parse(request.body)
        except ValueError as error:
            return json_response(400, {"error": str(error)})
        for key_id, service, result, count in rows:
            REQUESTS.labels(key_id, service, result).inc(count)
        return Response(204)
