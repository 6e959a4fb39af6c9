"""FakeKube: an in-memory stand-in for `modelplane.kube.Kube`'s list and watch, for tests.

Objects live per collection path (`/apis/x/v1/things`); every change bumps a
resourceVersion and is sent to the open watches of its collection whose label
selector matches. A test can end every open watch as the server's timeout does
(`end_watches`), break them as an API server restart does (`break_watches`),
make the next watch find its version compacted away (`compact`: "410 Gone"),
make lists fail (`failing_lists`), and serve a collection not at all
(`absent`: a list answers None, as `Kube.get` does for a 404). Objects can be read (`get` of
`collection/name`), created and replaced (refused, as None, unless the body
carries the stored resourceVersion). Every call is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from modelplane.kube import GoneError

Json = dict[str, Any]
_END = {"type": "_END"}


def _selected(obj: Json, params: Mapping[str, Any]) -> bool:
    """Label selectors `k=v` and `k` (the label exists); field selector `metadata.name=x`."""
    wanted = [p.partition("=") for p in str(params.get("labelSelector", "")).split(",") if p]
    labels = obj["metadata"].get("labels") or {}
    if not all(k in labels and (not eq or labels[k] == v) for k, eq, v in wanted):
        return False
    fields = [p.split("=", 1) for p in str(params.get("fieldSelector", "")).split(",") if p]
    return all(k == "metadata.name" and obj["metadata"]["name"] == v for k, v in fields)


def _version(obj: Json) -> str:
    return str(obj["metadata"].get("resourceVersion", ""))


def _key(obj: Json) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class FakeKube:
    def __init__(self, kind: str = "Thing", api_version: str = "x/v1") -> None:
        self.kind = kind
        self.api_version = api_version
        self.collections: dict[str, dict[str, Json]] = {}
        self.version = 100
        self.oldest = 0  # watches from a version older than this get "410 Gone"
        self.watchers: list[tuple[str, Mapping[str, Any], asyncio.Queue[Json]]] = []
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.failing_lists = 0
        self.absent: set[str] = set()

    def _bump(self, obj: Json) -> Json:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return obj

    def _send(self, collection: str, kind: str, obj: Json) -> None:
        for path, params, queue in self.watchers:
            if path == collection and _selected(obj, params):
                queue.put_nowait({"type": kind, "object": copy.deepcopy(obj)})

    def put(self, collection: str, obj: Json) -> None:
        """Create or replace `obj` (apiVersion and kind are filled in) and tell the watches."""
        obj = self._bump({"apiVersion": self.api_version, "kind": self.kind, **copy.deepcopy(obj)})
        items = self.collections.setdefault(collection, {})
        event = "MODIFIED" if _key(obj) in items else "ADDED"
        items[_key(obj)] = obj
        self._send(collection, event, obj)

    def remove(self, collection: str, namespace: str, name: str) -> None:
        obj = self.collections[collection].pop(f"{namespace}/{name}")
        self._send(collection, "DELETED", self._bump(obj))

    def end_watches(self) -> None:
        for _, _, queue in self.watchers:
            queue.put_nowait(_END)

    def break_watches(self) -> None:
        for _, _, queue in self.watchers:
            queue.put_nowait({"type": "_BREAK"})

    def compact(self) -> None:
        """Forget history: a watch from any version seen so far answers 410 Gone."""
        self.version += 1
        self.oldest = self.version

    def _object(self, path: str) -> tuple[str, str] | None:
        collection, _, name = path.rpartition("/")
        return (collection, name) if collection in self.collections else None

    def _find(self, collection: str, name: str) -> str | None:
        return next((k for k in self.collections[collection] if k.endswith(f"/{name}")), None)

    async def create(self, collection: str, body: Json) -> Json | None:
        self.calls.append(("create", collection, {}))
        items = self.collections.setdefault(collection, {})
        if _key(body) in items:
            return None
        self.put(collection, body)
        return copy.deepcopy(items[_key(body)])

    async def replace(self, path: str, body: Json) -> Json | None:
        self.calls.append(("replace", path, {}))
        collection, name = self._object(path) or ("", "")
        key = self._find(collection, name) if collection else None
        stored = self.collections[collection].get(key or "") if collection else None
        if stored is None or _version(stored) != _version(body):
            return None
        self.put(collection, body)
        return copy.deepcopy(self.collections[collection][_key(body)])

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Json | None:
        self.calls.append(("get", path, dict(params or {})))
        found = self._object(path)
        if found is not None and path not in self.collections:
            key = self._find(*found)
            return copy.deepcopy(self.collections[found[0]][key]) if key else None
        if self.failing_lists:
            self.failing_lists -= 1
            raise httpx.ConnectError("connection refused")
        if path in self.absent:
            return None
        items = self.collections.get(path, {})
        return {
            "apiVersion": self.api_version,
            "kind": f"{self.kind}List",
            "metadata": {"resourceVersion": str(self.version)},
            "items": [
                {k: v for k, v in copy.deepcopy(o).items() if k not in ("apiVersion", "kind")}
                for _, o in sorted(items.items())
                if _selected(o, params or {})
            ],
        }

    async def watch(self, path: str, params: Mapping[str, Any]) -> AsyncIterator[Json]:
        self.calls.append(("watch", path, dict(params)))
        if int(params.get("resourceVersion") or 0) < self.oldest:
            raise GoneError("too old resource version")
        queue: asyncio.Queue[Json] = asyncio.Queue()
        entry = (path, params, queue)
        self.watchers.append(entry)
        try:
            while True:
                event = await queue.get()
                if event is _END:
                    return
                if event["type"] == "_BREAK":
                    raise httpx.RemoteProtocolError("server disconnected")
                yield event
        finally:
            self.watchers.remove(entry)

    def count(self, verb: str) -> int:
        return sum(1 for call in self.calls if call[0] == verb)


async def settle(rounds: int = 50) -> None:
    """Let every ready task run until nothing is left to do (no clock involved)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
