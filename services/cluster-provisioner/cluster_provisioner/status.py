"""An InferenceCluster's status, decided from what was observed (pure: no I/O, no clock).

Inputs: the cluster object, the InferenceClasses by name, what became of its
kubeconfig (`Credentials`) and, when the cluster could be reached, what it
carries (`Inspection`). Output: the whole `status`, with

- `Ready`: True only when the cluster is reachable, carries the serving stack
  (the CRDs it needs) and its gateway has an address; otherwise False with a
  reason (`ProvisioningNotSupported`, `SecretNotFound`, `SecretKeyNotFound`,
  `KubeconfigInvalid`, `ClusterUnreachable`, `StackIncomplete`,
  `GatewayNotReady`, `Deleting` while its replicas drain) and a message naming
  the object and field to look at;
- `PoolsAvailable`: False when a pool's InferenceClass does not exist (that pool
  is left out of `pools`, so nothing is placed on it);
- `gatewayAddress` and `pools` as last seen: a cluster that cannot be reached
  keeps what it published, so its replicas are retained (degraded, not gone);
- `schedulerExtension`: the scheduler extension's health from its Lease and the
  accounting mode it allows (`cluster_provisioner.extension`); kept as last seen
  while the cluster cannot be reached (it takes no new replica then anyway);
- `observedGeneration`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane import conditions
from modelplane.conditions import condition
from modelplane.leases import parse_time
from modelplane.wellknown import CLUSTER_UNREACHABLE, Json

from cluster_provisioner import extension

POOLS_AVAILABLE = "PoolsAvailable"
PROVISIONING_NOT_SUPPORTED = "ProvisioningNotSupported"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"
KUBECONFIG_INVALID = "KubeconfigInvalid"
STACK_INCOMPLETE = "StackIncomplete"
GATEWAY_NOT_READY = "GatewayNotReady"
DELETING = "Deleting"
CLUSTER_READY = "ClusterReady"
ALL_POOLS_AVAILABLE = "AllPoolsAvailable"
CLASS_NOT_FOUND = conditions.CLASS_NOT_FOUND


@dataclass(frozen=True, slots=True)
class Credentials:
    """The kubeconfig of an Existing cluster, or why there is none (reason, message)."""

    kubeconfig: str | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the cluster carries, or why it could not be read (`error`)."""

    error: str = ""
    missing_crds: tuple[str, ...] = ()
    gateway_address: str | None = None
    gateway_problem: str = ""
    ready_nodes: Mapping[str, int] | None = None
    extension_lease: Mapping[str, Any] | None = None


def _name(cluster: Mapping[str, Any]) -> str:
    return f"InferenceCluster/{cluster['metadata']['name']}"


def _pools(
    cluster: Mapping[str, Any],
    classes: Mapping[str, Mapping[str, Any]],
    ready_nodes: Mapping[str, int] | None,
    previous: Sequence[Mapping[str, Any]],
) -> tuple[list[Json], list[str]]:
    before = {p["name"]: p for p in previous}
    pools, missing = [], []
    for i, pool in enumerate(cluster["spec"].get("nodePools") or []):
        found = classes.get(pool["className"])
        if found is None:
            missing.append(
                f"spec.nodePools[{i}].className: InferenceClass {pool['className']!r} not found"
            )
            continue
        if ready_nodes is not None:
            nodes = ready_nodes.get(pool["name"], 0)
        else:
            nodes = before.get(pool["name"], {}).get("nodes", 0)
        pools.append(
            {
                "name": pool["name"],
                "className": pool["className"],
                "nodes": nodes,
                "devices": list(found["spec"].get("devices") or []),
            }
        )
    return pools, missing


def _readiness(
    cluster: Mapping[str, Any], credentials: Credentials | None, inspection: Inspection | None
) -> tuple[str, str]:
    """(reason, message) of a False Ready condition, or (CLUSTER_READY, message) when Ready."""
    name = _name(cluster)
    source = cluster["spec"]["cluster"]["source"]
    if source != "Existing":
        return PROVISIONING_NOT_SUPPORTED, (
            f"{name} spec.cluster.source: provisioning {source} clusters is not supported yet; "
            "use source: Existing with a kubeconfig Secret"
        )
    if credentials is None or credentials.kubeconfig is None:
        assert credentials is not None
        return credentials.reason, credentials.message
    if inspection is None:
        return CLUSTER_UNREACHABLE, f"{name}: not inspected yet"
    if inspection.error:
        return CLUSTER_UNREACHABLE, f"{name}: cannot reach the cluster: {inspection.error}"
    if inspection.missing_crds:
        return STACK_INCOMPLETE, (
            f"{name}: the cluster lacks the serving stack's CRDs: "
            + ", ".join(inspection.missing_crds)
        )
    if not inspection.gateway_address:
        return (
            GATEWAY_NOT_READY,
            f"{name}: {inspection.gateway_problem or 'gateway has no address'}",
        )
    return (
        CLUSTER_READY,
        f"{name}: reachable, serving stack present, gateway at {inspection.gateway_address}",
    )


def decide(
    cluster: Mapping[str, Any],
    classes: Mapping[str, Mapping[str, Any]],
    credentials: Credentials | None,
    inspection: Inspection | None,
    now: str,
    draining: str = "",
) -> Json:
    """The status to write, given the observations; `now` is an RFC 3339 timestamp and
    `draining`, for a cluster being deleted, says what its deletion waits for."""
    previous = cluster.get("status") or {}
    generation = int(cluster["metadata"].get("generation", 1))
    reachable = inspection is not None and not inspection.error
    ready_nodes = inspection.ready_nodes if reachable and inspection is not None else None
    pools, missing = _pools(cluster, classes, ready_nodes, previous.get("pools") or [])
    reason, message = _readiness(cluster, credentials, inspection)
    if draining:
        reason, message = DELETING, draining
    ready = reason == CLUSTER_READY
    wanted = [
        condition(conditions.READY, "True" if ready else "False", reason, message, generation, now),
        condition(
            POOLS_AVAILABLE,
            "False" if missing else "True",
            CLASS_NOT_FOUND if missing else ALL_POOLS_AVAILABLE,
            f"{_name(cluster)} " + "; ".join(missing)
            if missing
            else f"{_name(cluster)}: every pool's InferenceClass exists",
            generation,
            now,
        ),
    ]
    status: Json = {
        "observedGeneration": generation,
        "conditions": conditions.merge(previous.get("conditions") or [], wanted),
        "pools": pools,
    }
    address = inspection.gateway_address if reachable and inspection else None
    address = address or (None if reachable else previous.get("gatewayAddress"))
    if address:
        status["gatewayAddress"] = address
    if reachable and inspection is not None:
        at = parse_time(now)
        assert at is not None
        status["schedulerExtension"] = extension.judge(inspection.extension_lease, at)[0]
    elif previous.get("schedulerExtension"):
        status["schedulerExtension"] = previous["schedulerExtension"]
    return status
