"""What KEDA is told about one ModelDeployment: its load, from what was observed (pure).

Inputs, all gathered elsewhere: the engines' samples (`vllm:num_requests_running` and
`vllm:num_requests_waiting` of each serving replica, scraped by `endpoint_manager.scrape`
from `<address>/metrics`, or a PrefillDecode replica's `<address>/modelplane/load`: its
router's sum over every decode pod),
the activator's held-request reports (`Activation.ReportHeld`), and the ModelDeployments,
ModelServices and ModelReplicas of the control cluster. No I/O and no clock: `now` is
given (seconds of a monotonic clock, the same one the samples and reports were stamped
with).

- `parse_engine_metrics`: Prometheus text -> (running, waiting), summed over label sets;
- `scaler_query`: a ScaledObject's trigger metadata -> `Query` (deployment, metric,
  target per replica), or `ScalerInputError` naming the ScaledObject and the field;
- `selects`: whether a ModelService's `spec.endpoints[].selector` selects a deployment;
- `deployment_load`: running + waiting summed over the deployment's serving replicas on
  every cluster, plus the requests held for every ModelService selecting it;
- `metric_value`, `is_active`: the number for the chosen metric, and whether it should run
  at all (any request held, waiting or running).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelplane import conditions, naming
from modelplane.wellknown import API_VERSION, PD_ROUTER_LOAD_PATH
from prometheus_client.parser import text_string_to_metric_families

from endpoint_manager.replica import endpoint_labels

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
IN_FLIGHT = "inFlight"
METRICS = (IN_FLIGHT, "waiting", "running")
"""Values of the trigger metadata `metric`; `inFlight` (running + waiting + held) is the default."""
DEFAULT_TARGET = 4.0
"""Default `targetPerReplica`: requests in flight one replica is meant to carry."""
SAMPLE_STALE_S = 15.0
"""An engine sample older than this counts as nothing (its replica stopped answering)."""
REPORT_STALE_S = 15.0
"""An activator report older than this counts as empty (an activator that died holds nothing)."""

Obj = Mapping[str, Any]


class ScalerInputError(ValueError):
    """A ScaledObject's trigger metadata that cannot be answered; the message names the field."""


@dataclass(frozen=True, slots=True)
class EngineSample:
    """One scrape of one replica's engine(s): requests running and waiting, and when."""

    running: float
    waiting: float
    at: float


@dataclass(frozen=True, slots=True)
class HeldService:
    namespace: str
    service: str
    held: int
    oldest_wait_s: float = 0.0


@dataclass(frozen=True, slots=True)
class HeldReport:
    """One activator's whole picture (each replaces that activator's previous one)."""

    activator: str
    at: float
    services: tuple[HeldService, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """What one trigger asks for: a deployment, the metric, and its target per replica."""

    namespace: str
    deployment: str
    metric: str = IN_FLIGHT
    target: float = DEFAULT_TARGET

    @property
    def metric_name(self) -> str:
        """The name the HPA's external metric gets (KEDA prefixes the trigger index)."""
        return f"{self.metric.lower()}-{self.deployment}"


@dataclass(frozen=True, slots=True)
class Load:
    """A deployment's requests: running and waiting at its engines, held at the activator."""

    running: float = 0.0
    waiting: float = 0.0
    held: int = 0
    replicas: int = 0
    """Serving replicas whose engines gave a fresh sample."""


@dataclass(frozen=True, slots=True)
class Objects:
    """The control cluster's objects the scaler reads (from endpoint-manager's watch cache)."""

    deployments: Mapping[str, Obj] = field(default_factory=dict)
    """By `namespace/name`."""
    services: Sequence[Obj] = ()
    replicas: Sequence[Obj] = ()


def parse_engine_metrics(text: str) -> tuple[float, float]:
    """(running, waiting) from an engine's Prometheus text; each summed over its label sets
    (one per served model); a gauge that is absent counts 0. Raises ValueError on text that
    is not the Prometheus exposition format."""
    totals = {RUNNING: 0.0, WAITING: 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals and math.isfinite(sample.value):
                totals[sample.name] += sample.value
    return totals[RUNNING], totals[WAITING]


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScalerInputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ScalerInputError(f"{where}: must be a number above 0, not {text!r}")
    return value


def scaler_query(
    namespace: str, name: str, metadata: Mapping[str, str], target: str | None
) -> Query:
    """The query of the trigger of ScaledObject `namespace/name`; `target` is the name of its
    `scaleTargetRef` when that is a ModelDeployment (None when unknown)."""
    what = f"ScaledObject {namespace}/{name}"
    deployment = metadata.get("deployment") or target
    if not deployment:
        raise ScalerInputError(
            f"{what}: trigger metadata `deployment` is required (the ModelDeployment to "
            "measure) when spec.scaleTargetRef is not a ModelDeployment"
        )
    metric = metadata.get("metric") or IN_FLIGHT
    if metric not in METRICS:
        raise ScalerInputError(
            f"{what}: trigger metadata `metric`: {metric!r} is not one of {', '.join(METRICS)}"
        )
    per_replica = metadata.get("targetPerReplica")
    wanted = (
        DEFAULT_TARGET
        if per_replica in (None, "")
        else _number(str(per_replica), f"{what}: trigger metadata `targetPerReplica`")
    )
    return Query(namespace, deployment, metric, wanted)


def target_name(scaled_object: Obj | None) -> str | None:
    """The name of a ScaledObject's `spec.scaleTargetRef` when it is a ModelDeployment."""
    ref = ((scaled_object or {}).get("spec") or {}).get("scaleTargetRef") or {}
    group = API_VERSION.split("/")[0]
    kind_ok = ref.get("kind") == "ModelDeployment"
    group_ok = str(ref.get("apiVersion") or API_VERSION).split("/")[0] == group
    return str(ref["name"]) if kind_ok and group_ok and ref.get("name") else None


def selects(service: Obj, deployment: Obj) -> bool:
    """Whether an entry of the service's `spec.endpoints` selects the deployment's endpoints:
    its `selector.matchLabels` against the labels endpoint-manager gives them (the
    deployment's own plus `modelplane.ai/deployment`); a `modelplane.ai/cluster` term
    matches any cluster, since a deployment at zero has no replica anywhere yet."""
    meta = deployment["metadata"]
    if (service.get("metadata") or {}).get("namespace") != meta.get("namespace"):
        return False
    labels = endpoint_labels(deployment, meta["name"], "")
    for entry in (service.get("spec") or {}).get("endpoints") or []:
        wanted = dict(((entry or {}).get("selector") or {}).get("matchLabels") or {})
        wanted.pop(naming.CLUSTER_LABEL, None)
        if all(labels.get(k) == v for k, v in wanted.items()):
            return True
    return False


def held_by_service(reports: Iterable[HeldReport], now: float) -> dict[tuple[str, str], int]:
    """Requests held per (namespace, service), summed over activators with a fresh report."""
    held: dict[tuple[str, str], int] = {}
    for report in reports:
        if now - report.at > REPORT_STALE_S:
            continue
        for entry in report.services:
            where = (entry.namespace, entry.service)
            held[where] = held.get(where, 0) + entry.held
    return held


def _serving(replica: Obj) -> bool:
    status = replica.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == conditions.READY]
    return bool(status.get("address")) and bool(ready) and ready[0].get("status") == "True"


def load_path(replica: Obj) -> str:
    """Where a replica's engine load is read, under its address: `/metrics` of its engine,
    or, for a PrefillDecode replica (`spec.serving.mode`), its router's
    `PD_ROUTER_LOAD_PATH`, which sums every decode pod (the router passes `/metrics` to one)."""
    mode = ((replica.get("spec") or {}).get("serving") or {}).get("mode")
    return PD_ROUTER_LOAD_PATH if mode == "PrefillDecode" else "/metrics"


def scrape_targets(replicas: Iterable[Obj]) -> dict[str, str]:
    """`namespace/name` -> the load URL (`load_path`) of every serving replica (Ready, with an
    address on its cluster's gateway): the same way the health probe goes."""
    return {
        f"{r['metadata']['namespace']}/{r['metadata']['name']}": r["status"]["address"]
        + load_path(r)
        for r in replicas
        if _serving(r)
    }


def deployment_load(
    query: Query,
    objects: Objects,
    samples: Mapping[str, EngineSample],
    reports: Iterable[HeldReport],
    now: float,
) -> Load | None:
    """The deployment's load, or None when it does not exist. Engine samples count for its
    serving replicas only and while fresh; held requests of every ModelService that selects
    it count in full (the same request may wake several deployments of one service)."""
    deployment = objects.deployments.get(f"{query.namespace}/{query.deployment}")
    if deployment is None:
        return None
    running = waiting = 0.0
    counted = 0
    for replica in objects.replicas:
        meta, spec = replica["metadata"], replica.get("spec") or {}
        if (
            meta.get("namespace") != query.namespace
            or spec.get("deploymentName") != query.deployment
        ):
            continue
        sample = samples.get(f"{meta['namespace']}/{meta['name']}")
        if sample is None or not _serving(replica) or now - sample.at > SAMPLE_STALE_S:
            continue
        running, waiting, counted = running + sample.running, waiting + sample.waiting, counted + 1
    held_now = held_by_service(reports, now)
    held = sum(
        held_now.get((query.namespace, s["metadata"]["name"]), 0)
        for s in objects.services
        if selects(s, deployment)
    )
    return Load(running, waiting, held, counted)


def metric_value(load: Load, metric: str) -> float:
    if metric == "running":
        return load.running
    if metric == "waiting":
        return load.waiting
    return load.running + load.waiting + load.held


def is_active(load: Load) -> bool:
    """Whether the deployment should run (KEDA's 0 <-> 1): any request held, waiting or
    running, whichever metric scales it 1..N (a deployment still answering is never put to
    zero because only its `waiting` metric fell to 0)."""
    return load.held > 0 or load.running + load.waiting > 0
