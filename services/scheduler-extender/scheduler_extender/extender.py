"""The extender's answers: `filter` and `prioritize` from the watched cluster state.

`Extender` reads a `Cache` of ResourceSlices, ResourceClaims, ResourceClaimTemplates
and DeviceClasses (never the API server per call), rebuilds the `Inventory` only
when slices or claims changed, and answers in the kube-scheduler extender wire
format (`k8s.io/kube-scheduler/extender/v1`: Go field names, no JSON tags).

Between kube-scheduler choosing a node and the claim's allocation reaching the
watch, the next pod would see that node as emptier than it is; a burst of small
pods would then spread instead of packing. So `prioritize` keeps a short-lived
*pending* reservation: the devices the pod would take on its best node. Scores
count pending devices as taken; filtering never does (it refuses only what the
watched allocations rule out, so a wrong guess cannot keep a pod off a node).
A pending reservation ends when a claim reserved for the pod shows an allocation,
or after `PENDING_TTL_S`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelplane.cache import OnChange, object_key

from scheduler_extender.inventory import (
    MAX_SCORE,
    Catalog,
    DeviceId,
    Inventory,
    allocated,
    assignment,
    requests_of,
    score,
)

RESOURCE = "/apis/resource.k8s.io/v1"
SLICES = f"{RESOURCE}/resourceslices"
CLAIMS = f"{RESOURCE}/resourceclaims"
TEMPLATES = f"{RESOURCE}/resourceclaimtemplates"
CLASSES = f"{RESOURCE}/deviceclasses"
PATHS = (SLICES, CLAIMS, TEMPLATES, CLASSES)
PENDING_TTL_S = 15.0
Json = dict[str, Any]


def _by_key(items: list[Json]) -> dict[str, Json]:
    return {object_key(obj): obj for obj in items}


@dataclass(frozen=True, slots=True)
class Pending:
    node: str
    devices: tuple[DeviceId, ...]
    until: float


class Watched(Protocol):
    """What the extender reads of `modelplane.cache.Cache`."""

    listeners: list[OnChange]

    @property
    def synced(self) -> bool: ...

    def items(self, path: str) -> list[Json]: ...


class Extender:
    def __init__(self, cache: Watched, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = cache
        self.clock = clock
        self._catalog: Catalog | None = None
        self._inventory: Inventory | None = None
        self._keyed: dict[str, dict[str, Json]] = {}  # path -> its objects by namespace/name
        self.pending: dict[str, Pending] = {}  # pod uid -> its guessed devices
        cache.listeners.append(self._changed)

    def _changed(self, path: str, obj: Json) -> None:
        self._keyed.pop(path, None)
        if path == SLICES:
            self._catalog = None
        if path in (SLICES, CLAIMS):
            self._inventory = None
        if path == CLAIMS and list(allocated([obj])):
            for reserved in (obj.get("status") or {}).get("reservedFor") or ():
                self.pending.pop(str(reserved.get("uid")), None)

    def inventory(self) -> Inventory:
        """Devices (and their selector matches) change only with the slices; what is taken
        changes with every allocation: the two are rebuilt apart."""
        if self._catalog is None:
            self._catalog = Catalog.from_slices(self.cache.items(SLICES))
        if self._inventory is None:
            taken = frozenset(allocated(self.cache.items(CLAIMS)))
            self._inventory = Inventory(self._catalog, taken)
        return self._inventory

    def _by_key(self, path: str) -> dict[str, Json]:
        """The collection by namespace/name, rebuilt only after it changed."""
        found = self._keyed.get(path)
        if found is None:
            found = self._keyed[path] = _by_key(self.cache.items(path))
        return found

    def _requests(self, pod: Json) -> tuple[list[Any], list[DeviceId]]:
        return requests_of(
            pod, self._by_key(CLAIMS), self._by_key(TEMPLATES), self._by_key(CLASSES)
        )

    def _with_pending(self, inventory: Inventory, except_pod: str) -> Inventory:
        now = self.clock()
        for uid in [u for u, p in self.pending.items() if p.until <= now]:
            del self.pending[uid]
        held = [d for uid, p in self.pending.items() if uid != except_pod for d in p.devices]
        return inventory.with_taken(held) if held else inventory

    def filter(self, args: Mapping[str, Any]) -> Json:
        pod = args.get("Pod") or {}
        names = _node_names(args)
        requests, _held = self._requests(pod)
        inventory = self.inventory()
        passed: list[str] = []
        failed: dict[str, str] = {}
        for node in names:
            found = assignment(inventory, node, requests)
            if isinstance(found, str):
                failed[node] = f"modelplane: {found}"
            else:
                passed.append(node)
        if args.get("NodeNames") is not None:
            return {"NodeNames": passed, "FailedNodes": failed, "Error": ""}
        kept = set(passed)
        nodes = [
            n for n in (args.get("Nodes") or {}).get("items") or () if n["metadata"]["name"] in kept
        ]
        return {"Nodes": {"items": nodes}, "FailedNodes": failed, "Error": ""}

    def prioritize(self, args: Mapping[str, Any]) -> list[Json]:
        pod = args.get("Pod") or {}
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        names = _node_names(args)
        requests, _held = self._requests(pod)
        if not requests:
            return [{"Host": node, "Score": 0} for node in names]
        inventory = self._with_pending(self.inventory(), except_pod=uid)
        found = {node: assignment(inventory, node, requests) for node in names}
        fitting = {node: f for node, f in found.items() if not isinstance(f, str)}
        # A node that fits only without the pending guesses scores 0: most-allocated among
        # the nodes where the pod still fits once the burst before it has landed.
        scores = {
            node: score(inventory, node, requests) if node in fitting else 0 for node in names
        }
        if fitting:
            chosen = min(fitting, key=lambda n: (-scores[n], n))
            devices = tuple(fitting[chosen])
            self.pending[uid] = Pending(chosen, devices, self.clock() + PENDING_TTL_S)
            scores[chosen] = _above_the_rest(scores, chosen)
        return [{"Host": node, "Score": scores[node]} for node in names]


def _above_the_rest(scores: Mapping[str, int], chosen: str) -> int:
    """The chosen node's score, raised one step above every other node's where there is room:
    kube-scheduler breaks ties at random, and a pending reservation on one of equally empty
    nodes is only right if the scheduler picks that one too."""
    others = [s for node, s in scores.items() if node != chosen]
    return min(MAX_SCORE, max(scores[chosen], max(others, default=-1) + 1))


def _node_names(args: Mapping[str, Any]) -> list[str]:
    """The candidate nodes: `NodeNames` (nodeCacheCapable) or the names in `Nodes`."""
    if args.get("NodeNames") is not None:
        return [str(n) for n in args["NodeNames"]]
    return [str(n["metadata"]["name"]) for n in (args.get("Nodes") or {}).get("items") or ()]
