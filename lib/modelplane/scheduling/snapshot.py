"""Builds the scheduler's plain values from modelplane.ai API objects.

The input objects are already validated and defaulted (`modelplane.api`), so
this module only reshapes. It is the one place that knows both the API's field
names and the core's values; the running service and the offline command share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from modelplane.devices import selector_device
from modelplane.naming import DEPLOYMENT_LABEL, REPLICA_INDEX_LABEL
from modelplane.scheduling.model import (
    Accounting,
    Cache,
    ClassDevice,
    Cluster,
    Deployment,
    DeviceRequest,
    Engine,
    EnginePin,
    HardwareClass,
    Labels,
    Member,
    PodShape,
    Pool,
    Replica,
    Role,
)
from modelplane.scheduling.packing import shape
from modelplane.scheduling.taints import Taint, Toleration

Obj = Mapping[str, Any]


def _labels(mapping: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((mapping or {}).items()))


def _match_labels(spec: Obj, key: str = "clusterSelector") -> Labels:
    selector = spec.get(key) or {}
    return _labels(selector.get("matchLabels"))


def hardware_class(obj: Obj) -> HardwareClass:
    devices = []
    for device in obj["spec"].get("devices", ()):
        devices.append(
            ClassDevice(
                name=device["name"],
                claim=device.get("claim", "DRA"),
                count=int(device.get("count", 1)),
                device=selector_device(
                    device["driver"], device.get("attributes"), device.get("capacity")
                ),
                device_class_name=device.get("deviceClassName"),
            )
        )
    return HardwareClass(obj["metadata"]["name"], tuple(devices))


def _condition(obj: Obj, type_: str) -> Obj | None:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == type_:
            return cast(Obj, condition)
    return None


def accounting(obj: Obj) -> Accounting:
    """`Device` when the InferenceCluster's status says its scheduler extension is healthy
    (`status.schedulerExtension.accounting`), else `Node`."""
    extension = (obj.get("status") or {}).get("schedulerExtension") or {}
    return "Device" if extension.get("accounting") == "Device" else "Node"


def cluster(obj: Obj, *, offline: bool) -> Cluster:
    """An InferenceCluster. Ready means a Ready=True condition and a gateway address.

    Offline input carries no status; with `offline`, a cluster without any status
    counts as Ready. A cluster with a status is judged by it alone, offline or live:
    not Ready, or Ready without a gateway address (degraded), takes no new replicas.
    """
    status = obj.get("status") or {}
    ready_condition = _condition(obj, "Ready")
    if offline and not status:
        ready, why = True, ""
    elif ready_condition is None or ready_condition.get("status") != "True":
        ready = False
        why = (ready_condition or {}).get("message") or "no Ready condition yet"
    elif not status.get("gatewayAddress"):
        ready, why = False, "no gateway address yet"
    else:
        ready, why = True, ""
    pools = tuple(
        Pool(
            pool["name"],
            pool["className"],
            int(
                pool["maxNodeCount"]
                if pool.get("maxNodeCount") is not None
                else pool.get("nodeCount", 0)
            ),
        )
        for pool in obj["spec"].get("nodePools", ())
    )
    return Cluster(
        obj["metadata"]["name"],
        pools,
        labels=_labels(obj["metadata"].get("labels")),
        ready=ready,
        not_ready_reason=why,
        taints=tuple(
            Taint(taint["key"], taint["effect"], taint.get("value") or "")
            for taint in obj["spec"].get("taints") or ()
        ),
        accounting=accounting(obj),
    )


def _member(member: Obj) -> Member:
    role = cast(Role, member.get("role", "Standalone"))
    requests = tuple(
        DeviceRequest(
            request["name"],
            int(request.get("count", 1)),
            tuple(selector["cel"] for selector in request.get("selectors") or ()),
        )
        for request in ((member.get("nodeSelector") or {}).get("devices") or ())
    )
    nodes = int((member.get("worker") or {}).get("nodes", 0)) if role == "Worker" else 0
    return Member(role, requests, worker_nodes=nodes)


def deployment(obj: Obj) -> Deployment:
    spec = obj["spec"]
    engines = tuple(
        Engine(
            engine["name"],
            tuple(_member(m) for m in engine.get("members", ())),
            copies=int(engine.get("copies", 1)),
        )
        for engine in spec.get("engines", ())
    )
    cache_ref = spec.get("modelCacheRef") or {}
    return Deployment(
        obj["metadata"].get("namespace", "default"),
        obj["metadata"]["name"],
        int(spec.get("replicas", 1)),
        engines,
        cluster_selector=_match_labels(spec),
        cache_name=cache_ref.get("name"),
        tolerations=tuple(
            Toleration(
                t.get("key") or "",
                t.get("operator") or "Equal",
                t.get("value") or "",
                t.get("effect") or None,
            )
            for t in spec.get("tolerations") or ()
        ),
    )


def cache(obj: Obj) -> Cache:
    return Cache(
        obj["metadata"].get("namespace", "default"),
        obj["metadata"]["name"],
        _match_labels(obj["spec"]),
    )


_INDEX_SUFFIX = re.compile(r"-(\d+)$")


def replica(obj: Obj) -> Replica:
    """An existing ModelReplica. Older or hand-written ones may lack the index, owner or costs:
    the index then comes from the `modelplane.ai/replica-index` label, else the name's `-N`
    suffix; the deployment from the label or the name; and an engine's cost from its own
    members (never from the deployment's current template)."""
    meta = obj["metadata"]
    spec = obj["spec"]
    name = meta["name"]
    labels = meta.get("labels") or {}
    cluster_name = spec["clusterName"]
    index = spec.get("index")
    if index is None and str(labels.get(REPLICA_INDEX_LABEL, "")).isdigit():
        index = int(labels[REPLICA_INDEX_LABEL])
    if index is None:
        found = _INDEX_SUFFIX.search(name)
        index = int(found.group(1)) if found else 0
    owner = labels.get(DEPLOYMENT_LABEL) or spec.get("deploymentName")
    if not owner:
        suffix = f"-{cluster_name}-{index}"
        owner = name[: -len(suffix)] if name.endswith(suffix) else name
    pins = []
    for engine in spec.get("engines", ()):
        members = engine.get("members", ())
        pool = engine.get("nodePoolName") or next(
            (m["nodePoolName"] for m in members if m.get("nodePoolName")), ""
        )
        copies = int(engine.get("copies", 1))
        pods: list[PodShape] = []
        for m in members:
            if m.get("deviceRequests"):
                count = (
                    int((m.get("worker") or {}).get("nodes", 1)) if m.get("role") == "Worker" else 1
                )
                one = shape(
                    (str(r.get("deviceClassName", "")), int(r.get("count", 1)))
                    for r in m["deviceRequests"]
                )
                pods += [one] * (count * copies)
        cost = engine.get("nodeCost")
        pins.append(
            EnginePin(engine["name"], pool, len(pods) if cost is None else int(cost), tuple(pods))
        )
    return Replica(
        meta.get("namespace", "default"), owner, int(index), cluster_name, tuple(pins), name
    )


def by_kind(objects: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Group objects by kind, keeping input order within a kind."""
    grouped: dict[str, list[Obj]] = {}
    for obj in objects:
        grouped.setdefault(str(obj.get("kind")), []).append(obj)
    return grouped
