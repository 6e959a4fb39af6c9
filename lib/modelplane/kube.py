"""A thin JSON client over kr8s: API paths in, plain dicts out.

Every service (and the local fleet's node agent) talks to an apiserver through
one `Kube` per cluster, authenticated as its own identity (a kubeconfig, or the
in-cluster service account when none is given). Every call takes an API path
(`/api/v1/namespaces/ns/pods/name`) and returns plain dicts; `apply` is
server-side apply with the client's own field manager; `watch` yields events
from a resourceVersion until the server ends the stream, and raises `GoneError`
when that version is too old, so the caller lists again. `TRANSIENT` names the
errors worth retrying. Every request is counted in
`modelplane_api_requests_total{server,method,resource}` (a watch as method
`WATCH`; `resource` the plural of the path, e.g. `leases`), so a service's
requests at rest can be read off its `/metrics`, leader election apart.
"""

from __future__ import annotations

import json
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
    def __init__(self, api: kr8s.asyncio.Api, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager

    def _count(self, method: str, path: str) -> None:
        server = getattr(getattr(self.api, "auth", None), "server", "") or ""
        controllermetrics.API_REQUESTS.labels(str(server), method, resource(path)).inc()

    @classmethod
    async def connect(cls, kubeconfig: str | dict[str, Any] | None, field_manager: str) -> Kube:
        """A client for the cluster of `kubeconfig` (a path or the parsed file); one
        connection per distinct kubeconfig is reused."""
        # kr8s loads a parsed kubeconfig (dict) too; its annotation only names paths.
        api = await kr8s.asyncio.api(kubeconfig=kubeconfig)  # type: ignore[arg-type]
        return cls(api, field_manager)

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
            "GET", version="", base=base, url=last, params=query, stream=True, timeout=None
        ) as reply:
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


TRANSIENT = (httpx.HTTPError, kr8s.ServerError, OSError, GoneError)
