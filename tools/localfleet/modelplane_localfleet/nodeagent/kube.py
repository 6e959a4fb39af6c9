"""A thin JSON client over kr8s for the node agent: paths in, dicts out.

The agent speaks to a single apiserver with its own client certificate. Every
call takes an API path (`/api/v1/namespaces/ns/pods/name`) and returns plain
dicts; `apply` is server-side apply with the agent's field manager; `watch`
yields events from a resourceVersion until the server ends the stream, and
raises `GoneError` when that version is too old, so the caller lists again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import kr8s
import kr8s.asyncio

FIELD_MANAGER = "modelplane-node-agent"
Json = dict[str, Any]


class GoneError(Exception):
    """The watch's resourceVersion is too old: list again."""


def _split(path: str) -> tuple[str, str]:
    base, _, last = path.rstrip("/").rpartition("/")
    return base, last


class Kube:
    def __init__(self, api: kr8s.asyncio.Api) -> None:
        self.api = api

    @classmethod
    async def connect(cls, kubeconfig: str) -> Kube:
        return cls(await kr8s.asyncio.api(kubeconfig=kubeconfig))

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
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type="application/apply-patch+yaml",
        )

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
