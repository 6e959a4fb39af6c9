"""Small builders for scheduler inputs, so test tables read like the manifests they stand for."""

from __future__ import annotations

from modelplane.cel import Attribute, Device
from modelplane.scheduling.model import (
    Cache,
    ClassDevice,
    Cluster,
    Deployment,
    DeviceRequest,
    Engine,
    EnginePin,
    Fleet,
    HardwareClass,
    Member,
    Placement,
    Pool,
    Replica,
    Role,
)

GPU_DRIVER = "gpu.nvidia.com"


def mem_at_least(quantity: str) -> str:
    return f'device.capacity["{GPU_DRIVER}"].memory.compareTo(quantity("{quantity}")) >= 0'


def gpu(
    memory: str,
    count: int = 1,
    architecture: str = "Ada Lovelace",
    name: str = "gpu",
) -> ClassDevice:
    return ClassDevice(
        name=name,
        claim="DRA",
        count=count,
        device=Device(
            driver=GPU_DRIVER,
            attributes=(("architecture", Attribute("string", architecture)),),
            capacity=(("memory", memory),),
        ),
        device_class_name=GPU_DRIVER,
    )


def nic(count: int = 8, claim: str = "Synthetic", link: str = "infiniband") -> ClassDevice:
    return ClassDevice(
        name="nic",
        claim="Synthetic" if claim == "Synthetic" else "DRA",
        count=count,
        device=Device(
            driver="nic.nvidia.com", attributes=(("linkType", Attribute("string", link)),)
        ),
        device_class_name=None if claim == "Synthetic" else "nic.nvidia.com",
    )


def hw(name: str, *devices: ClassDevice) -> HardwareClass:
    return HardwareClass(name, tuple(devices))


def pool(name: str, class_name: str, nodes: int = 1) -> Pool:
    return Pool(name, class_name, nodes)


def cluster(name: str, *pools: Pool, ready: bool = True, **labels: str) -> Cluster:
    return Cluster(
        name,
        tuple(pools),
        labels=tuple(sorted((f"modelplane.ai/{k}", v) for k, v in labels.items())),
        ready=ready,
        not_ready_reason="" if ready else "Ready condition is False",
    )


def request(name: str = "gpu", count: int = 1, *selectors: str) -> DeviceRequest:
    return DeviceRequest(name, count, tuple(selectors))


def member(role: Role = "Standalone", *requests: DeviceRequest, nodes: int = 0) -> Member:
    return Member(role, tuple(requests), worker_nodes=nodes)


def engine(name: str, *members: Member, copies: int = 1) -> Engine:
    return Engine(name, tuple(members), copies)


def standalone(
    name: str = "engine", memory: str = "20Gi", count: int = 1, copies: int = 1
) -> Engine:
    return engine(
        name, member("Standalone", request("gpu", count, mem_at_least(memory))), copies=copies
    )


def deployment(
    name: str,
    *engines: Engine,
    replicas: int = 1,
    namespace: str = "ml-team",
    cache: str | None = None,
    **selector: str,
) -> Deployment:
    return Deployment(
        namespace,
        name,
        replicas,
        tuple(engines) or (standalone(),),
        cluster_selector=tuple(sorted((f"modelplane.ai/{k}", v) for k, v in selector.items())),
        cache_name=cache,
    )


def replica(
    deployment_name: str,
    index: int,
    cluster_name: str,
    *pins: tuple[str, str, int],
    namespace: str = "ml-team",
) -> Replica:
    return Replica(
        namespace,
        deployment_name,
        index,
        cluster_name,
        tuple(EnginePin(e, p, c) for e, p, c in pins),
        name=f"{deployment_name}-{cluster_name}-{index}",
    )


def cache(name: str, namespace: str = "ml-team", **selector: str) -> Cache:
    return Cache(
        namespace, name, tuple(sorted((f"modelplane.ai/{k}", v) for k, v in selector.items()))
    )


def fleet(
    clusters: list[Cluster],
    classes: list[HardwareClass],
    replicas: list[Replica] | None = None,
    caches: list[Cache] | None = None,
) -> Fleet:
    return Fleet(
        clusters=tuple(clusters),
        classes={c.name: c for c in classes},
        replicas=tuple(replicas or ()),
        caches={(c.namespace, c.name): c for c in caches or ()},
    )


def summary(placement: Placement) -> dict[int, tuple[str, dict[str, str]]]:
    """index -> (cluster, {engine: pool}): the shape tables compare against."""
    return {r.index: (r.cluster, {e.engine: e.pool for e in r.engines}) for r in placement.replicas}


def as_existing(placement: Placement) -> list[Replica]:
    """Feed a placement back in as the replicas that now exist."""
    return [
        Replica(
            placement.namespace,
            placement.name,
            r.index,
            r.cluster,
            tuple(EnginePin(e.engine, e.pool, e.node_cost, e.pods) for e in r.engines),
            name=f"{placement.name}-{r.cluster}-{r.index}",
        )
        for r in placement.replicas
    ]
