"""The scaler's gRPC services: KEDA's `ExternalScaler` and the activator's `Activation`.

Both are served on `--scaler-address` (`register`), with the gRPC health service, by
every copy of endpoint-manager. They read and write only the `ScalerState` (the scrape
loop keeps it current), so no call waits on a cluster or an engine:

- `IsActive`, `GetMetrics`: the deployment's `Load` now (`scalermetrics.deployment_load`);
  the trigger metadata names the deployment (`deployment`, else the ScaledObject's
  `scaleTargetRef` when it is a ModelDeployment, looked up through `targets`), the
  metric (`metric`) and the target per replica (`targetPerReplica`);
- `StreamIsActive`: the answer at once, again the moment it changes (a held request
  reported by `ReportHeld` wakes the stream: that is what makes scale from zero
  fast), and at least every `push_every_s`;
- `GetMetricSpec`, `StreamMetricSpec` (sent once, then held open until the caller ends
  it): the metric's name and target;
- `ReportHeld`: replaces the sending activator's report.

Errors: INVALID_ARGUMENT naming the ScaledObject and the metadata field (or the report's
field), NOT_FOUND naming the ModelDeployment, UNAVAILABLE until the watch cache has listed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
from modelplane.proto.gen.externalscaler import externalscaler_pb2 as pb
from modelplane.proto.gen.externalscaler import externalscaler_pb2_grpc as pb_grpc
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2 as apb
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2_grpc as apb_grpc

from endpoint_manager.scalermetrics import (
    HeldReport,
    HeldService,
    Load,
    Obj,
    Query,
    ScalerInputError,
    deployment_load,
    is_active,
    metric_value,
    scaler_query,
    target_name,
)
from endpoint_manager.scalerstate import ScalerState

SCALER_SERVICE = "externalscaler.ExternalScaler"
ACTIVATION_SERVICE = "modelplane.activation.v1.Activation"
SERVICES = (SCALER_SERVICE, ACTIVATION_SERVICE)
PUSH_EVERY_S = 5.0
"""`StreamIsActive` repeats its answer at least this often."""
TARGET_TTL_S = 30.0
"""How long a ScaledObject's looked-up `scaleTargetRef` is reused."""
log = logging.getLogger("endpoint_manager.scaler")


class Targets:
    """ScaledObject (namespace, name) -> its ModelDeployment target's name, looked up with
    `fetch` (None when it has none or cannot be read) and kept `ttl_s`."""

    def __init__(
        self,
        fetch: Callable[[str, str], Obj | None],
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = TARGET_TTL_S,
    ) -> None:
        self.fetch = fetch
        self.clock = clock
        self.ttl_s = ttl_s
        self.lock = threading.Lock()
        self.known: dict[tuple[str, str], tuple[float, str | None]] = {}

    def __call__(self, namespace: str, name: str) -> str | None:
        now = self.clock()
        with self.lock:
            cached = self.known.get((namespace, name))
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        try:
            found = target_name(self.fetch(namespace, name))
        except Exception as error:  # an unreadable ScaledObject: the metadata must say
            log.warning(
                "cannot read ScaledObject",
                extra={
                    "fields": {"object": f"ScaledObject {namespace}/{name}", "error": str(error)}
                },
            )
            found = None
        with self.lock:
            self.known[(namespace, name)] = (now, found)
        return found


def _abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the call with `code` (`context.abort` raises)."""
    context.abort(code, message)
    raise AssertionError("context.abort returned")


class ScalerServicer(pb_grpc.ExternalScalerServicer):
    def __init__(
        self,
        state: ScalerState,
        targets: Callable[[str, str], str | None],
        clock: Callable[[], float] = time.monotonic,
        push_every_s: float = PUSH_EVERY_S,
    ) -> None:
        self.state = state
        self.targets = targets
        self.clock = clock
        self.push_every_s = push_every_s

    def _query(self, ref: pb.ScaledObjectRef, context: Any) -> Query:
        metadata = dict(ref.scalerMetadata)
        target = None if metadata.get("deployment") else self.targets(ref.namespace, ref.name)
        try:
            return scaler_query(ref.namespace, ref.name, metadata, target)
        except ScalerInputError as error:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))

    def _load(self, query: Query, context: Any) -> Load:
        view = self.state.view()
        if not view.synced:
            _abort(context, grpc.StatusCode.UNAVAILABLE, "endpoint-manager has not listed yet")
        load = deployment_load(query, view.objects, view.samples, view.reports, self.clock())
        if load is None:
            _abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"ModelDeployment {query.namespace}/{query.deployment} not found",
            )
        return load

    def _spec(self, query: Query) -> pb.GetMetricSpecResponse:
        spec = pb.MetricSpec(
            metricName=query.metric_name,
            targetSize=max(1, math.ceil(query.target)),
            targetSizeFloat=query.target,
        )
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    def IsActive(self, request: pb.ScaledObjectRef, context: Any) -> pb.IsActiveResponse:  # noqa: N802
        return pb.IsActiveResponse(
            result=is_active(self._load(self._query(request, context), context))
        )

    def StreamIsActive(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: Any
    ) -> Iterator[pb.IsActiveResponse]:
        query = self._query(request, context)
        seen, sent, sent_at = -1, None, -math.inf
        while context.is_active():
            active = is_active(self._load(query, context))
            if active != sent or self.clock() - sent_at >= self.push_every_s:
                yield pb.IsActiveResponse(result=active)
                sent, sent_at = active, self.clock()
            seen = self.state.wait_change(seen, self.push_every_s)

    def GetMetricSpec(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: Any
    ) -> pb.GetMetricSpecResponse:
        return self._spec(self._query(request, context))

    def StreamMetricSpec(  # noqa: N802
        self, request: pb.ScaledObjectRef, context: Any
    ) -> Iterator[pb.GetMetricSpecResponse]:
        yield self._spec(self._query(request, context))
        # The spec is the trigger metadata's alone: it never changes. The stream stays open
        # until the caller ends it (KEDA opens it again 2 s after a stream ends).
        ended = threading.Event()
        if context.add_callback(ended.set):
            ended.wait()

    def GetMetrics(self, request: pb.GetMetricsRequest, context: Any) -> pb.GetMetricsResponse:  # noqa: N802
        query = self._query(request.scaledObjectRef, context)
        value = metric_value(self._load(query, context), query.metric)
        metric = pb.MetricValue(
            metricName=request.metricName or query.metric_name,
            metricValue=math.ceil(value),
            metricValueFloat=value,
        )
        return pb.GetMetricsResponse(metricValues=[metric])


class ActivationServicer(apb_grpc.ActivationServicer):
    def __init__(self, state: ScalerState, clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.clock = clock

    def ReportHeld(self, request: apb.HeldReport, context: Any) -> apb.HeldReportAck:  # noqa: N802
        if not request.activator:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "HeldReport.activator: required")
        services = []
        for index, entry in enumerate(request.services):
            for name in ("namespace", "service"):
                if not getattr(entry, name):
                    _abort(
                        context,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"HeldReport from {request.activator!r}: "
                        f"services[{index}].{name}: required",
                    )
            services.append(
                HeldService(entry.namespace, entry.service, entry.held, entry.oldest_wait_seconds)
            )
        self.state.set_report(HeldReport(request.activator, self.clock(), tuple(services)))
        return apb.HeldReportAck()


def register(scaler: ScalerServicer, activation: ActivationServicer) -> Callable[[Any], None]:
    """A `grpcutil.start_server` register callback adding both servicers."""

    def add(server: Any) -> None:
        pb_grpc.add_ExternalScalerServicer_to_server(scaler, server)
        apb_grpc.add_ActivationServicer_to_server(activation, server)

    return add
