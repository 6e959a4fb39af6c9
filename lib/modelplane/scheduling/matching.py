"""Which pools can host which engines: CEL device requests against InferenceClasses.

A `Matcher` lives for one reconcile (or one `modelplane schedule` run). It
evaluates each distinct (selector, device) pair at most once, and each
(engine, class) pair at most once, so CEL never dominates placement time.
Capacity is not checked here: the answer only depends on the class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelplane.cel import Device, Selector, SelectorError, Verdict, compile_selector, matches
from modelplane.scheduling.model import (
    ClassDevice,
    Deployment,
    DeviceRequest,
    Engine,
    HardwareClass,
    Member,
    PlacedMember,
    PodShape,
    ResolvedRequest,
)
from modelplane.scheduling.packing import member_pods


@dataclass(frozen=True, slots=True)
class EngineFit:
    """Whether an engine fits one node of a class and, if so, what it costs and claims
    (`pods`: the shape of each of its `node_cost` pods that claim devices)."""

    ok: bool
    node_cost: int = 0
    members: tuple[PlacedMember, ...] = ()
    reason: str = ""
    pods: tuple[PodShape, ...] = ()


@dataclass(frozen=True, slots=True)
class _MemberFit:
    ok: bool
    claims: bool = False
    requests: tuple[ResolvedRequest, ...] = ()
    reason: str = ""


def compile_deployment(deployment: Deployment) -> str | None:
    """Compile every selector of a deployment; the first error as a user-facing message
    naming the object and the field (`spec.engines[I].members[J].nodeSelector.devices[K]
    .selectors[L].cel`), then the engine, member and device in words."""
    for engine_index, engine in enumerate(deployment.engines):
        for member_index, member in enumerate(engine.members):
            for request_index, request in enumerate(member.requests):
                for selector_index, expression in enumerate(request.selectors):
                    try:
                        compile_selector(expression)
                    except SelectorError as error:
                        field = (
                            f"spec.engines[{engine_index}].members[{member_index}]"
                            f".nodeSelector.devices[{request_index}]"
                            f".selectors[{selector_index}].cel"
                        )
                        return (
                            f"ModelDeployment {deployment.namespace}/{deployment.name}: "
                            f'{field}: invalid selector of engine "{engine.name}" member '
                            f'{member_index} ({member.role}) device "{request.name}": {error}'
                        )
    return None


class Matcher:
    """Memoized CEL matching of device requests against class devices."""

    def __init__(self, classes: Mapping[str, HardwareClass]) -> None:
        self._classes = classes
        self._verdicts: dict[tuple[str, Device], Verdict] = {}
        self._claimable: dict[DeviceRequest, bool] = {}
        self._engine_fits: dict[tuple[Engine, str], EngineFit] = {}

    # ------------------------------------------------------------- per device

    def _verdict(self, expression: str, device: Device) -> Verdict:
        key = (expression, device)
        verdict = self._verdicts.get(key)
        if verdict is None:
            selector: Selector = compile_selector(expression)
            verdict = matches(selector, device)
            self._verdicts[key] = verdict
        return verdict

    def _device_matches(self, request: DeviceRequest, device: ClassDevice) -> bool:
        return all(self._verdict(e, device.device).matched for e in request.selectors)

    def is_claimable(self, request: DeviceRequest) -> bool:
        """A request is claimable when some DRA device of some known class matches it.

        A claimable request must then be satisfied by DRA devices wherever it is
        placed: it may not ride for free on a pool that only offers a synthetic
        look-alike.
        """
        known = self._claimable.get(request)
        if known is None:
            known = any(
                device.claim == "DRA" and self._device_matches(request, device)
                for cls in self._classes.values()
                for device in cls.devices
            )
            self._claimable[request] = known
        return known

    # ------------------------------------------------------------- per engine

    def engine_fit(self, engine: Engine, class_name: str) -> EngineFit:
        """Whether every member of `engine` fits one node of `class_name` (capacity aside)."""
        key = (engine, class_name)
        fit = self._engine_fits.get(key)
        if fit is None:
            fit = self._fit_engine(engine, class_name)
            self._engine_fits[key] = fit
        return fit

    def _fit_engine(self, engine: Engine, class_name: str) -> EngineFit:
        cls = self._classes.get(class_name)
        if cls is None:
            return EngineFit(False, reason=f'InferenceClass "{class_name}" does not exist')
        placed: list[PlacedMember] = []
        cost = 0
        claims = False
        for index, member in enumerate(engine.members):
            fit = self._fit_member(member, cls)
            if not fit.ok:
                where = f"member {index} ({member.role}): " if len(engine.members) > 1 else ""
                return EngineFit(False, reason=where + fit.reason)
            member_cost = member.pods * engine.copies if fit.claims else 0
            claims = claims or fit.claims
            cost += member_cost
            placed.append(PlacedMember(member.role, fit.requests, member_cost))
        if not claims:
            return EngineFit(
                False,
                reason=f'engine "{engine.name}" claims no DRA device on class "{cls.name}" '
                "(at least one member must request a DRA device)",
            )
        members = tuple(placed)
        return EngineFit(True, node_cost=cost, members=members, pods=member_pods(members))

    def _fit_member(self, member: Member, cls: HardwareClass) -> _MemberFit:
        if not member.requests:
            return _MemberFit(True)
        candidates: list[list[int]] = []
        resolved: list[ResolvedRequest] = []
        for request in member.requests:
            claimable = self.is_claimable(request)
            wanted = "DRA" if claimable else "Synthetic"
            usable = [
                i
                for i, device in enumerate(cls.devices)
                if device.claim == wanted
                and device.count > 0
                and self._device_matches(request, device)
            ]
            if usable and claimable:
                # One DRA request draws from one device class.
                device_class = (
                    cls.devices[usable[0]].device_class_name or cls.devices[usable[0]].name
                )
                usable = [
                    i
                    for i in usable
                    if (cls.devices[i].device_class_name or cls.devices[i].name) == device_class
                ]
                resolved.append(
                    ResolvedRequest(request.name, request.count, device_class, request.selectors)
                )
            if not usable:
                return _MemberFit(False, reason=self._why_no_match(request, cls, wanted))
            offered = sum(cls.devices[i].count for i in usable)
            if offered < request.count:
                return _MemberFit(
                    False,
                    reason=f'device "{request.name}" needs {request.count} per node, '
                    f'class "{cls.name}" has {offered} matching',
                )
            candidates.append(usable)
        if not _covers([r.count for r in member.requests], candidates, cls.devices):
            names = ", ".join(f'"{r.name}"' for r in member.requests)
            total = sum(r.count for r in member.requests)
            return _MemberFit(
                False,
                reason=f"devices {names} need {total} distinct devices per node together, "
                f'class "{cls.name}" cannot cover them without counting a device twice',
            )
        return _MemberFit(True, claims=bool(resolved), requests=tuple(resolved))

    def _why_no_match(self, request: DeviceRequest, cls: HardwareClass, wanted: str) -> str:
        prefix = f'device "{request.name}" matched no device'
        if wanted == "DRA":
            synthetic = [
                d
                for d in cls.devices
                if d.claim == "Synthetic" and self._device_matches(request, d)
            ]
            if synthetic:
                return (
                    f'{prefix} (only the Synthetic device "{synthetic[0].name}" matches, '
                    "and it cannot be claimed)"
                )
            candidates = [d for d in cls.devices if d.claim == "DRA" and d.count > 0]
            if not candidates:
                return f'{prefix} (class "{cls.name}" has no DRA devices)'
        else:
            # Nothing claimable matches anywhere: explain against every device of the class.
            candidates = [d for d in cls.devices if d.count > 0]
            if not candidates:
                return f'{prefix} (class "{cls.name}" has no devices)'
        for index, expression in enumerate(request.selectors, start=1):
            verdicts = [self._verdict(expression, d.device) for d in candidates]
            if not any(v.matched for v in verdicts):
                errors = [v.reason for v in verdicts if v.reason]
                detail = f": {errors[0]}" if errors else ""
                return f"{prefix} (selector {index}{detail})"
        return f"{prefix} (no single device satisfies every selector)"


def _covers(
    counts: Sequence[int], candidates: Sequence[list[int]], devices: Sequence[ClassDevice]
) -> bool:
    """Can each request i take counts[i] devices from its candidate entries, none twice?

    A small max-flow (requests -> device entries) by augmenting paths; sizes are
    a handful of requests and entries.
    """
    capacity = [d.count for d in devices]
    flow: list[dict[int, int]] = [dict.fromkeys(c, 0) for c in candidates]
    used = [0] * len(devices)

    def augment(request: int, seen: set[int]) -> bool:
        for entry in candidates[request]:
            if entry in seen:
                continue
            seen.add(entry)
            if used[entry] < capacity[entry]:
                used[entry] += 1
                flow[request][entry] += 1
                return True
            for other, entries in enumerate(flow):
                if entries.get(entry, 0) > 0 and other != request and augment(other, seen):
                    entries[entry] -= 1
                    flow[request][entry] += 1
                    return True
        return False

    for request, count in enumerate(counts):
        for _ in range(count):
            if not augment(request, set()):
                return False
    return True
