"""A thin JSON client over kr8s: API paths in, plain dicts out.

Every service (and the local fleet's node agent) talks to an apiserver through
one `Kube` per cluster, authenticated as its own identity (a kubeconfig, or the
in-cluster service account when none is given). Every call takes an API path
(`/api/v1/namespaces/ns/pods/name`) and returns plain dicts; `apply` is
server-side apply with the client's own field manager; `watch` yields events
from a resourceVersion until the server ends the stream, and raises `GoneError`
when that version is too old, so the caller lists again. A watch's connection
carries TCP keepalive (`keep_alive`), so a server that vanished without closing
it (a cut network, a powered-off host) ends the watch with an error within
about `DEAD_PEER_S` instead of leaving it open for ever. `connect` may bound
connecting (TCP and TLS) with `connect_timeout_s`; other reads are not bounded.
`TRANSIENT` names the errors worth retrying. Every request is counted in
`modelplane_api_requests_total{server,method,resource}` (a watch as method
`WATCH`; `resource` the plural of the path, e.g. `leases`), so a service's
requests at rest can be read off its `/metrics`, leader election apart.
"""

from __future__ import annotations

import json
import socket
import warnings
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import kr8s
import kr8s.asyncio

from modelplane import controllermetrics
from modelplane.wellknown import Json as Json  # noqa: PLC0414 (re-exported for importers)

# kr8s warns on servers newer than the versions it lists; the API it uses is stable.
warnings.filterwarnings("ignore", message="Kubernetes version .* is not supported", module="kr8s")


KEEPALIVE_IDLE_S = 3
KEEPALIVE_INTERVAL_S = 2
KEEPALIVE_PROBES = 3
DEAD_PEER_S = KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S * KEEPALIVE_PROBES
"""Seconds after which a watch whose server stopped answering at the TCP level fails."""


def keep_alive(sock: socket.socket) -> None:
    """Probe an idle connection after `KEEPALIVE_IDLE_S`, every `KEEPALIVE_INTERVAL_S`, and
    drop it after `KEEPALIVE_PROBES` unanswered probes, or when data sent stays unacknowledged
    for `DEAD_PEER_S` (the options a platform lacks are left out)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
        ("TCP_USER_TIMEOUT", DEAD_PEER_S * 1000),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


class GoneError(Exception):
    """The watch's resourceVersion is too old: list again."""


def resource(path: str) -> str:
    """The resource (plural) an API path names: `leases` for
    `/apis/coordination.k8s.io/v1/namespaces/ns/leases/name`, `namespaces` for
    `/api/v1/namespaces/ns`."""
    parts = path.partition("?")[0].strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    return rest[0] if rest else ""


def _split(path: str) -> tuple[str, str]:
    base, _, last = path.rstrip("/").rpartition("/")
    return base, last


class Kube:
    def __init__(
        self, api: kr8s.asyncio.Api, field_manager: str, connect_timeout_s: float | None = None
    ) -> None:
        self.api = api
        self.field_manager = field_manager
        self.timeout = httpx.Timeout(None, connect=connect_timeout_s)

    def _count(self, method: str, path: str) -> None:
        server = getattr(getattr(self.api, "auth", None), "server", "") or ""
        controllermetrics.API_REQUESTS.labels(str(server), method, resource(path)).inc()

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | dict[str, Any] | None,
        field_manager: str,
        connect_timeout_s: float | None = None,
    ) -> Kube:
        """A client for the cluster of `kubeconfig` (a path or the parsed file); one
        connection per distinct kubeconfig is reused (a `connect_timeout_s` given then
        bounds connecting for every client of that kubeconfig)."""
        # kr8s loads a parsed kubeconfig (dict) too; its annotation only names paths.
        api = await kr8s.asyncio.api(kubeconfig=kubeconfig)  # type: ignore[arg-type]
        if connect_timeout_s is not None:
            api.timeout = httpx.Timeout(None, connect=connect_timeout_s)
        return cls(api, field_manager, connect_timeout_s)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = "application/json",
    ) -> Json:
        base, last = _split(path)
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": content_type}
        if params:
            kwargs["params"] = dict(params)
        self._count(method, path)
        async with self.api.call_api(method, version="", base=base, url=last, **kwargs) as reply:
            data: Json = reply.json() if reply.content else {}
            return data

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Json | None:
        try:
            return await self._call("GET", path, params=params)
        except kr8s.ServerError as error:
            if _status(error) == 404:
                return None
            raise

    async def create(self, path: str, body: Json) -> Json | None:
        """POST `body` to the collection `path`; None when it already exists."""
        try:
            return await self._call("POST", path, body=body)
        except kr8s.ServerError as error:
            if _status(error) == 409:
                return None
            raise

    async def apply(self, path: str, body: Json) -> Json:
        return await self._call(
            "PATCH",
            path,
            body=body,
            params={"fieldManager": self.field_manager, "force": "true"},
            content_type="application/apply-patch+yaml",
        )

    async def own_finalizers(
        self, path: str, obj: Mapping[str, Any], finalizers: list[str]
    ) -> Json:
        """Hold exactly `finalizers` on `obj` (at `path`; a custom resource as listed, with
        its apiVersion and kind) as this client's field manager, by server-side apply: an
        empty list releases ours and leaves everyone else's in place."""
        meta = obj["metadata"]
        owned = {key: meta[key] for key in ("name", "namespace") if key in meta}
        body = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {**owned, "finalizers": finalizers},
        }
        return await self.apply(path, body)

    async def replace(self, path: str, body: Json) -> Json | None:
        """PUT `body` (carrying its resourceVersion); None on a conflict."""
        try:
            return await self._call("PUT", path, body=body)
        except kr8s.ServerError as error:
            if _status(error) == 409:
                return None
            raise

    async def merge_patch(self, path: str, body: Json) -> Json | None:
        try:
            return await self._call(
                "PATCH", path, body=body, content_type="application/merge-patch+json"
            )
        except kr8s.ServerError as error:
            if _status(error) in (404, 409):
                return None
            raise

    async def delete(self, path: str, body: Json | None = None) -> bool:
        """DELETE `path`; False when it was already gone or its precondition failed."""
        try:
            await self._call("DELETE", path, body=body)
        except kr8s.ServerError as error:
            if _status(error) in (404, 409):
                return False
            raise
        return True

    async def watch(self, path: str, params: Mapping[str, str | int]) -> AsyncIterator[Json]:
        base, last = _split(path)
        query = {**params, "watch": "true", "allowWatchBookmarks": "true"}
        self._count("WATCH", path)
        async with self.api.call_api(
            "GET", version="", base=base, url=last, params=query, stream=True, timeout=self.timeout
        ) as reply:
            stream = reply.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                keep_alive(sock)
            async for line in reply.aiter_lines():
                if not line:
                    continue
                event: Json = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise GoneError(obj.get("message", "resourceVersion too old"))
                    raise RuntimeError(f"watch of {path} failed: {obj.get('message')}")
                yield event


def _status(error: kr8s.ServerError) -> int | None:
    response = getattr(error, "response", None)
    return response.status_code if isinstance(response, httpx.Response) else None


TRANSIENT = (httpx.HTTPError, kr8s.ServerError, kr8s.APITimeoutError, OSError, GoneError)
