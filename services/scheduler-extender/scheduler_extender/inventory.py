"""The pure core: each node's devices, which are taken, and whether a pod's claims fit.

`Inventory.build(slices, claims, classes)` indexes the cluster's ResourceSlices by
node and marks every device that a ResourceClaim's allocation names as taken.
`requests_of(pod, claims, templates)` reads what a pod asks for: one `DeviceRequest`
per request of each of its claims (from the ResourceClaim, or from the template
while the claim does not exist yet), with the DeviceClass's selectors and the
request's own. `fits` decides exactly (a bipartite matching of the requests'
device slots to free devices, so a feasible node is never refused), and `score`
is most-allocated: the share of the node's matching devices already in use,
0..10 as the extender API wants. A pod with no device claims fits everywhere
and scores 0 everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelplane.cel import Device, Selector, compile_selector, matches
from modelplane.devices import selector_device

Json = Mapping[str, Any]
DeviceId = tuple[str, str, str]  # (driver, pool, device name), as an allocation names it
MAX_SCORE = 10  # k8s.io/kube-scheduler extender/v1 MaxExtenderPriority


@dataclass(frozen=True, slots=True)
class NodeDevice:
    id: DeviceId
    device: Device


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """`count` devices (all matching ones when `count` is None) matching every selector."""

    claim: str
    name: str
    selectors: tuple[Selector, ...]
    count: int | None


class Catalog:
    """Every node's devices, from the ResourceSlices; which devices match a selector set
    is computed once per set and kept (devices change only with the slices)."""

    def __init__(self, devices: Mapping[str, tuple[NodeDevice, ...]]) -> None:
        self.devices = devices
        self._matching: dict[tuple[Selector, ...], frozenset[DeviceId]] = {}
        self._matching_any: dict[tuple[tuple[Selector, ...], ...], frozenset[DeviceId]] = {}

    @classmethod
    def from_slices(cls, slices: Iterable[Json]) -> Catalog:
        by_node: dict[str, list[NodeDevice]] = {}
        for piece in slices:
            spec = piece.get("spec") or {}
            node = spec.get("nodeName")
            if not node:
                continue
            driver = str(spec.get("driver", ""))
            pool = str((spec.get("pool") or {}).get("name", ""))
            for entry in spec.get("devices") or ():
                device_id = (driver, pool, str(entry["name"]))
                device = selector_device(driver, entry.get("attributes"), entry.get("capacity"))
                by_node.setdefault(node, []).append(NodeDevice(device_id, device))
        return cls({n: tuple(d) for n, d in by_node.items()})

    def matching(self, selectors: tuple[Selector, ...]) -> frozenset[DeviceId]:
        """The devices that match every selector of `selectors`."""
        found = self._matching.get(selectors)
        if found is None:
            found = frozenset(
                d.id
                for devices in self.devices.values()
                for d in devices
                if all(matches(selector, d.device).matched for selector in selectors)
            )
            self._matching[selectors] = found
        return found

    def matching_any(self, sets: tuple[tuple[Selector, ...], ...]) -> frozenset[DeviceId]:
        """The devices matching every selector of at least one of `sets`."""
        found = self._matching_any.get(sets)
        if found is None:
            found = frozenset().union(*(self.matching(selectors) for selectors in sets))
            self._matching_any[sets] = found
        return found


@dataclass(frozen=True, slots=True)
class Inventory:
    """The catalog's devices and which are taken. Each node's free devices, and which of
    them match a selector set, are computed on first use and kept: an inventory never
    changes (the extender builds a new one when claims change)."""

    catalog: Catalog
    taken: frozenset[DeviceId] = field(default_factory=frozenset)
    _free: dict[str, list[NodeDevice]] = field(default_factory=dict, compare=False, repr=False)
    _candidates: dict[tuple[str, tuple[Selector, ...]], list[int]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(cls, slices: Iterable[Json], claims: Iterable[Json]) -> Inventory:
        return cls(Catalog.from_slices(slices), frozenset(allocated(claims)))

    @property
    def devices(self) -> Mapping[str, tuple[NodeDevice, ...]]:
        """Node name -> its devices."""
        return self.catalog.devices

    def with_taken(self, more: Iterable[DeviceId]) -> Inventory:
        return Inventory(self.catalog, self.taken | frozenset(more))

    def free(self, node: str) -> list[NodeDevice]:
        """The node's devices not taken (do not modify: it is kept)."""
        found = self._free.get(node)
        if found is None:
            found = [d for d in self.devices.get(node, ()) if d.id not in self.taken]
            self._free[node] = found
        return found

    def candidates(self, node: str, selectors: tuple[Selector, ...]) -> list[int]:
        """Indexes into `free(node)` of the devices matching every selector (kept)."""
        key = (node, selectors)
        found = self._candidates.get(key)
        if found is None:
            wanted = self.catalog.matching(selectors)
            found = [i for i, d in enumerate(self.free(node)) if d.id in wanted]
            self._candidates[key] = found
        return found


def allocated(claims: Iterable[Json]) -> Iterable[DeviceId]:
    """Every device a ResourceClaim's allocation holds."""
    for claim in claims:
        allocation = (claim.get("status") or {}).get("allocation") or {}
        for result in (allocation.get("devices") or {}).get("results") or ():
            yield (str(result["driver"]), str(result["pool"]), str(result["device"]))


def _class_selectors(classes: Mapping[str, Json], name: str) -> tuple[Selector, ...]:
    found = classes.get(name) or {}
    return tuple(
        compile_selector(s["cel"]["expression"])
        for s in (found.get("spec") or {}).get("selectors") or ()
        if "cel" in s
    )


def _claim_requests(claim: str, spec: Json, classes: Mapping[str, Json]) -> list[DeviceRequest]:
    out = []
    for request in (spec.get("devices") or {}).get("requests") or ():
        exactly = request.get("exactly") or {}
        if not exactly:
            continue  # firstAvailable alternatives: left to kube-scheduler, no packing advice
        selectors = _class_selectors(classes, str(exactly.get("deviceClassName", "")))
        selectors += tuple(
            compile_selector(s["cel"]["expression"])
            for s in exactly.get("selectors") or ()
            if "cel" in s
        )
        all_of_them = exactly.get("allocationMode") == "All"
        count = None if all_of_them else int(exactly.get("count", 1))
        out.append(DeviceRequest(claim, str(request["name"]), selectors, count))
    return out


def requests_of(
    pod: Json,
    claims: Mapping[str, Json],
    templates: Mapping[str, Json],
    classes: Mapping[str, Json],
) -> tuple[list[DeviceRequest], list[DeviceId]]:
    """What the pod asks for, and the devices its claims already hold (allocated claims
    need nothing more: kube-scheduler keeps the pod where they are). `claims` and
    `templates` are keyed `namespace/name`."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    generated = {
        s.get("name"): s.get("resourceClaimName")
        for s in (pod.get("status") or {}).get("resourceClaimStatuses") or ()
    }
    wanted: list[DeviceRequest] = []
    held: list[DeviceId] = []
    for entry in (pod.get("spec") or {}).get("resourceClaims") or ():
        name = entry.get("resourceClaimName") or generated.get(entry.get("name"))
        claim = claims.get(f"{namespace}/{name}") if name else None
        if claim is not None:
            already = list(allocated([claim]))
            if already:
                held += already
                continue
            wanted += _claim_requests(str(name), claim.get("spec") or {}, classes)
            continue
        template_name = entry.get("resourceClaimTemplateName")
        template = templates.get(f"{namespace}/{template_name}") if template_name else None
        if template is not None:
            spec = (template.get("spec") or {}).get("spec") or {}
            wanted += _claim_requests(str(entry.get("name")), spec, classes)
    return wanted, held


def _wanted(inventory: Inventory, request: DeviceRequest) -> frozenset[DeviceId]:
    return inventory.catalog.matching(request.selectors)


def fits(inventory: Inventory, node: str, requests: Sequence[DeviceRequest]) -> str | None:
    """None when the node's free devices can satisfy every request at once; else why not."""
    found = assignment(inventory, node, requests)
    return found if isinstance(found, str) else None


def assignment(
    inventory: Inventory, node: str, requests: Sequence[DeviceRequest]
) -> list[DeviceId] | str:
    """Free devices of `node` that would satisfy every request at once, or why there are none."""
    if not requests:
        return []
    free = inventory.free(node)
    slots: list[list[int]] = []
    for request in requests:
        candidates = inventory.candidates(node, request.selectors)
        if request.count is None:
            wanted = _wanted(inventory, request)
            everything = [d for d in inventory.devices.get(node, ()) if d.id in wanted]
            if not everything or len(everything) != len(candidates):
                return (
                    f"claim {request.claim} request {request.name}: allocationMode All, "
                    f"{len(candidates)} of {len(everything)} matching devices free"
                )
            slots += [candidates] * len(candidates)
        else:
            if len(candidates) < request.count:
                return (
                    f"claim {request.claim} request {request.name}: {len(candidates)} free "
                    f"matching devices, {request.count} wanted"
                )
            slots += [candidates] * request.count
    if len(requests) == 1:  # one request: any of its candidates will do
        return [free[device].id for device in slots[0][: len(slots)]] if slots else []
    owner = _assign(slots) if len(slots) <= len(free) else None
    if owner is None:
        return "the claims' requests cannot all be met at once from the free devices"
    return [free[device].id for device in sorted(owner)]


def _assign(slots: Sequence[Sequence[int]]) -> dict[int, int] | None:
    """A distinct device for every slot from its candidates (augmenting paths), as
    device -> slot; None when there is no such assignment."""
    owner: dict[int, int] = {}

    def place(slot: int, seen: set[int]) -> bool:
        for device in slots[slot]:
            if device in seen:
                continue
            seen.add(device)
            if device not in owner or place(owner[device], seen):
                owner[device] = slot
                return True
        return False

    return owner if all(place(slot, set()) for slot in range(len(slots))) else None


def score(inventory: Inventory, node: str, requests: Sequence[DeviceRequest]) -> int:
    """Most-allocated: 0..10, the share of the node's devices that match any request and
    are already taken, rounded up (so one device in use already beats a free node; 10: a
    node all but full; 0: a whole free node)."""
    wanted = inventory.catalog.matching_any(tuple(r.selectors for r in requests))
    relevant = [d for d in inventory.devices.get(node, ()) if d.id in wanted]
    if not relevant:
        return 0
    used = sum(1 for d in relevant if d.id in inventory.taken)
    return -(-MAX_SCORE * used // len(relevant))  # rounded up: any use beats a free node
