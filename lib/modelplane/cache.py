"""A local copy of watched API collections, kept current by list + watch (an informer).

`Cache(kube, paths)` keeps one `Informer` per collection path; a path may carry
a query (`?labelSelector=...`, `?fieldSelector=...`) to hold only those objects.
Each informer lists its collection once, then watches from the listed
resourceVersion, applying every event to its store. When the server ends a
watch (its timeout), it watches again from the last version it saw, without
listing; when the version is too old ("410 Gone") or the watch or list fails
(e.g. the API server restarting), it lists again, after a backoff that grows
while the failures go on (a list that works but a watch that keeps failing
included) and resets once a watch delivers an event or runs to its end, and it
reports what changed in between as events. A collection the server does not
serve (a list answering 404: its CRD is not installed) is held empty and listed
again after the backoff's cap, never watched, until it appears.

Readers (`items`, `get`) get the stored objects themselves, each with its
`apiVersion` and `kind` filled in, sorted by namespace and name: they must not
mutate them. `on_change(path, obj)` is called for every object added, changed
or deleted (a deleted object as last seen), after the store reflects it.
`synced` is True once every collection has been listed once. Each
`contact_listeners(path, error)` is told how every request to the server went:
None when it answered (a list, any watch event, a watch the server ended), the
exception when a list or watch failed; `modelplane.watchhealth` judges from
that whether the server is still there.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

from modelplane.workqueue import Backoff

Json = dict[str, Any]
OnChange = Callable[[str, Json], None]
OnContact = Callable[[str, BaseException | None], None]
log = logging.getLogger("modelplane.cache")


class Lister(Protocol):
    """What the cache needs of `modelplane.kube.Kube`."""

    async def get(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> Json | None: ...

    def watch(self, path: str, params: Mapping[str, str | int]) -> Any:
        """An async iterator of watch events (raising `GoneError` when too old)."""
        ...


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class Informer:
    """One collection's store, filled by list and kept by watch."""

    def __init__(
        self,
        kube: Lister,
        path: str,
        on_change: OnChange,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_contact: OnContact | None = None,
    ) -> None:
        self.kube = kube
        self.path = path
        self.collection, _, query = path.partition("?")
        self.params: dict[str, str | int] = dict(parse_qsl(query))
        self.on_change = on_change
        self.backoff = backoff or Backoff(base_s=0.5, cap_s=10.0, rng=random.Random())
        self.sleep = sleep
        self.on_contact = on_contact or (lambda _path, _error: None)
        self.objects: dict[str, Json] = {}
        self.version = ""
        self.synced = False
        self.absent = False  # the server does not serve the collection (404)
        self.listed = asyncio.Event()

    def _fill(self, obj: Json, api_version: str, kind: str) -> Json:
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        return obj

    async def relist(self) -> None:
        """List the collection and replace the store, reporting every difference."""
        found = await self.kube.get(self.collection, self.params)
        self.absent = found is None
        listing = found or {}
        api_version = str(listing.get("apiVersion", ""))
        kind = str(listing.get("kind", "")).removesuffix("List")
        fresh = {
            object_key(item): self._fill(item, api_version, kind)
            for item in listing.get("items") or []
        }
        old, self.objects = self.objects, fresh
        self.version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        self.synced = True
        self.listed.set()
        self.on_contact(self.path, None)
        for key, obj in self.objects.items():
            if key not in old or _version(old[key]) != _version(obj):
                self.on_change(self.path, obj)
        for key, obj in old.items():
            if key not in self.objects:
                self.on_change(self.path, obj)

    def apply(self, event: Mapping[str, Any]) -> None:
        """One watch event into the store (a bookmark only moves the version)."""
        obj: Json = event.get("object") or {}
        self.version = _version(obj) or self.version
        kind = event.get("type")
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self.on_change(self.path, obj)

    async def watch_once(self) -> None:
        """Follow one watch from the current version until the server ends it."""
        params = {**self.params, "resourceVersion": self.version}
        async for event in self.kube.watch(self.collection, params):
            self.on_contact(self.path, None)
            self.apply(event)
            self.backoff.forget(self.path)
        self.on_contact(self.path, None)

    async def run(self) -> None:
        """List, then watch for ever: re-watch when a watch ends, list again when one fails
        (or after the backoff's cap while the collection is absent)."""
        stale = True
        while True:
            try:
                if stale:
                    await self.relist()
                    stale = False
                if self.absent:
                    stale = True
                    await self.sleep(self.backoff.cap_s)
                    continue
                await self.watch_once()
                self.backoff.forget(self.path)  # the server ended a watch that worked
            except Exception as error:  # the API server restarting, 410 Gone, a bad event
                self.on_contact(self.path, error)
                stale = True
                delay = self.backoff.failure(self.path)
                log.warning(
                    "watch interrupted; listing again",
                    extra={"fields": {"path": self.path, "error": str(error) or repr(error),
                                      "retry_s": round(delay, 2)}},
                )  # fmt: skip
                await self.sleep(delay)


class Cache:
    """Informers for a fixed set of collection paths, read by path."""

    def __init__(
        self,
        kube: Lister,
        paths: Sequence[str],
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """`sleep` (the wait before listing again) and `rng` (its jitter) are for tests."""
        self.paths = tuple(dict.fromkeys(paths))
        self.listeners: list[OnChange] = []
        self.contact_listeners: list[OnContact] = []
        self.informers = {
            p: Informer(kube, p, self._changed, Backoff(0.5, 10.0, rng=rng), sleep, self._contact)
            for p in self.paths
        }

    def _changed(self, path: str, obj: Json) -> None:
        for listener in self.listeners:
            listener(path, obj)

    def _contact(self, path: str, error: BaseException | None) -> None:
        for listener in self.contact_listeners:
            listener(path, error)

    @property
    def synced(self) -> bool:
        return all(i.synced for i in self.informers.values())

    async def wait_synced(self) -> None:
        for informer in self.informers.values():
            await informer.listed.wait()

    def items(self, path: str) -> list[Json]:
        """The objects of the collection `path` (as given to the cache), by namespace/name."""
        objects = self.informers[path].objects
        return [objects[key] for key in sorted(objects)]

    def get(self, path: str, name: str, namespace: str = "") -> Json | None:
        key = f"{namespace}/{name}" if namespace else name
        return self.informers[path].objects.get(key)

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run()) for i in self.informers.values()]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
