"""The ``FleetScheduler`` gRPC servicer: Schedule and Explain over the observed snapshot.

Status codes (the API contract, also in the .proto):
- INVALID_ARGUMENT: a given manifest does not parse, an object is given twice, or a
  given object other than a ModelDeployment is invalid; the message names each
  document ("manifests[I] (document J): why"). Explain with no name.
- NOT_FOUND: Explain of a ModelDeployment the observed fleet does not have, or has
  but is deleting (the message says which).
- INTERNAL: a bug; the traceback is logged, the message says only that it happened.

Both RPCs only read: they never change the fleet, so clients may retry them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NoReturn

import grpc
from modelplane.logs import bind
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2 as pb
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2_grpc as pb_grpc
from modelplane.proto.placement import SERVICE_NAME, to_proto

from fleet_scheduler.dryrun import (
    InvalidManifestsError,
    being_deleted,
    dry_run,
    explain,
    parse_manifests,
)
from fleet_scheduler.snapshot import SnapshotSource

log = logging.getLogger(__name__)


class FleetSchedulerServicer(pb_grpc.FleetSchedulerServicer):
    """Answers from ``source``'s objects at the time of each call."""

    def __init__(self, source: SnapshotSource) -> None:
        self.source = source

    def Schedule(self, request: pb.ScheduleRequest, context: Any) -> pb.ScheduleResponse:  # noqa: N802
        started = time.monotonic()
        try:
            given = parse_manifests(list(request.manifests))
            result = dry_run(
                self.source.objects(),
                given,
                offline=self.source.offline,
                only_given_deployments=request.only_given_deployments,
            )
        except InvalidManifestsError as exc:
            failure: tuple[Any, str] = (grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Exception:
            log.exception("Schedule failed", extra={"fields": {"rpc": "Schedule"}})
            failure = (grpc.StatusCode.INTERNAL, "internal error in Schedule; see the server log")
        else:
            bind(log, rpc="Schedule").info(
                "scheduled",
                extra={
                    "fields": {
                        "manifests": len(request.manifests),
                        "deployments": len(result.deployments),
                        "ms": round((time.monotonic() - started) * 1000, 1),
                    }
                },
            )
            return pb.ScheduleResponse(
                deployments=[to_proto(d) for d in result.deployments],
                problems=list(result.problems),
            )
        _abort(context, "Schedule", *failure)

    def Explain(self, request: pb.ExplainRequest, context: Any) -> pb.ExplainResponse:  # noqa: N802
        namespace = request.namespace or "default"
        target = f"ModelDeployment {namespace}/{request.name}"
        if not request.name:
            _abort(context, "Explain", grpc.StatusCode.INVALID_ARGUMENT, "name is required")
        try:
            report = explain(
                self.source.objects(), namespace, request.name, offline=self.source.offline
            )
        except Exception:
            log.exception("Explain failed", extra={"fields": {"object": target}})
            failure: tuple[Any, str] = (
                grpc.StatusCode.INTERNAL,
                "internal error in Explain; see the server log",
            )
        else:
            if report is not None:
                return pb.ExplainResponse(deployment=to_proto(report))
            why = (
                "is being deleted, so it is not placed (its replicas go with it)"
                if being_deleted(self.source.objects(), namespace, request.name)
                else "is not in the observed fleet"
            )
            failure = (grpc.StatusCode.NOT_FOUND, f"{target} {why}")
        _abort(context, "Explain", *failure)


def _abort(context: Any, rpc: str, code: Any, message: str) -> NoReturn:
    """Ends the call with ``code``; ``context.abort`` raises, so this never returns."""
    bind(log, rpc=rpc).info("rpc failed", extra={"fields": {"code": code.name, "why": message}})
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # pragma: no cover


def register(source: SnapshotSource) -> Any:
    """A ``start_server`` register callback adding the servicer for ``source``."""

    def add(server: Any) -> None:
        pb_grpc.add_FleetSchedulerServicer_to_server(FleetSchedulerServicer(source), server)

    return add


__all__ = ["SERVICE_NAME", "FleetSchedulerServicer", "register"]
