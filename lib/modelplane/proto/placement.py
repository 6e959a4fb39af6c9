"""Converts scheduling reports to and from ``modelplane.fleetscheduler.v1`` messages.

``to_proto(report)`` is what the fleet-scheduler sends; ``from_proto(message)`` is what
a client (the CLI's remote ``explain``) turns back into a ``DeploymentReport`` to render
with the same code as offline output.

Guarantees: ``from_proto(to_proto(r)) == r`` for every report, except that engines come
back ordered by engine name (a protobuf map has no order) and the rendered ModelReplica
``manifests``, which the API does not carry, come back empty.
"""

from __future__ import annotations

from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2 as pb
from modelplane.scheduling.offline import DeploymentReport, RemovedReport, ReplicaReport

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["FleetScheduler"].full_name
"""The full service name, as health checks and service configs spell it."""


def to_proto(report: DeploymentReport) -> pb.DeploymentPlacement:
    message = pb.DeploymentPlacement(
        namespace=report.namespace,
        name=report.name,
        desired_replicas=report.desired_replicas,
        replicas=[
            pb.ReplicaPlacement(
                index=r.index,
                cluster=r.cluster,
                engines=dict(r.engines),
                retained=r.retained,
                why=r.why,
                name=r.name,
            )
            for r in report.replicas
        ],
        unscheduled=report.unscheduled,
        reasons=list(report.reasons),
        removed=[
            pb.RemovedReplica(name=r.name, index=r.index, cluster=r.cluster, why=r.why)
            for r in report.removed
        ],
    )
    if report.error is not None:
        message.error = report.error
    return message


def from_proto(message: pb.DeploymentPlacement) -> DeploymentReport:
    return DeploymentReport(
        namespace=message.namespace,
        name=message.name,
        desired_replicas=message.desired_replicas,
        replicas=tuple(
            ReplicaReport(
                index=r.index,
                cluster=r.cluster,
                engines=dict(sorted(r.engines.items())),
                retained=r.retained,
                why=r.why,
                name=r.name,
            )
            for r in message.replicas
        ),
        unscheduled=message.unscheduled,
        reasons=tuple(message.reasons),
        error=message.error if message.HasField("error") else None,
        removed=tuple(
            RemovedReport(name=r.name, index=r.index, cluster=r.cluster, why=r.why)
            for r in message.removed
        ),
    )
