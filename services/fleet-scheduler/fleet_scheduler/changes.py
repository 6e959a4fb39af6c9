"""Which watched changes can change the fleet-scheduler's decision, so queue a pass.

A pass places every deployment, so a pass per event is costly with 1,000 of
them; most events are echoes that cannot change the decision: the status this
service just wrote on a ModelDeployment, or endpoint-manager's progress on a
ModelReplica. `Relevance.keys` is the loop's `keys`: it remembers, per object
uid, a digest of what a pass reads of it, and queues the pass (`loop.ALL`) only
when that digest changes, the object is new, or it is gone from the cache.
What a pass reads: every field but the bookkeeping ones (`resourceVersion`,
`managedFields`), except that of a ModelDeployment's status nothing (a pass only
compares it with what it would write), and of a ModelReplica's status only
whether it is Ready. The loop's resync still queues a pass every 60 s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from modelplane.cache import Cache, Json, object_key
from modelplane.loop import ALL

BOOKKEEPING = ("resourceVersion", "managedFields")


def _ready(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )


def read_by_a_pass(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `obj` a pass's decision depends on."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in BOOKKEEPING}
    read: dict[str, Any] = {**obj, "metadata": meta}
    status = obj.get("status") or {}
    if obj.get("kind") == "ModelDeployment":
        read.pop("status", None)
    elif obj.get("kind") == "ModelReplica":
        read["status"] = {"ready": _ready(status)}
    return read


def digest(obj: Mapping[str, Any]) -> bytes:
    text = json.dumps(read_by_a_pass(obj), sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class Relevance:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.seen: dict[str, bytes] = {}  # uid -> digest of what a pass last read of it

    def keys(self, path: str, obj: Json) -> tuple[str, ...]:
        """`(ALL,)` when this change of `obj` in `path` can change the decision, else ()."""
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if self.cache.informers[path].objects.get(object_key(obj)) is None:  # deleted
            self.seen.pop(uid, None)
            return (ALL,)
        now = digest(obj)
        if uid and self.seen.get(uid) == now:
            return ()
        if uid:
            self.seen[uid] = now
        return (ALL,)
