"""Renders scheduling reports as JSON, YAML (ModelReplica manifests) or a table for people.

Every renderer is deterministic: the same reports give byte-identical text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import yaml

from modelplane.scheduling.offline import DeploymentReport


def as_json(reports: Sequence[DeploymentReport]) -> str:
    return json.dumps({"deployments": [r.to_json() for r in reports]}, indent=2) + "\n"


def as_yaml(reports: Sequence[DeploymentReport]) -> str:
    """The ModelReplica manifests the fleet-scheduler would create, as one multi-document YAML."""
    documents = [manifest for report in reports for manifest in report.manifests]
    if not documents:
        return ""
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, width=100)


def as_table(
    reports: Sequence[DeploymentReport], accounting: Mapping[str, str] | None = None
) -> str:
    """One row per replica; ACCOUNTING is how its cluster's pools are counted: `Node` (a
    whole node per pod that claims a device) or `Device` (devices per node, packed)."""
    modes = accounting or {}
    rows = [("DEPLOYMENT", "REPLICA", "CLUSTER", "ENGINES (engine=pool)", "ACCOUNTING", "STATUS")]
    notes: list[str] = []
    for report in reports:
        key = f"{report.namespace}/{report.name}"
        for replica in report.replicas:
            engines = ",".join(f"{e}={p}" for e, p in replica.engines.items())
            rows.append(
                (
                    key,
                    str(replica.index),
                    replica.cluster,
                    engines,
                    modes.get(replica.cluster, "Node"),
                    "kept" if replica.retained else "new",
                )
            )
        for removed in report.removed:
            rows.append(
                (key, str(removed.index), removed.cluster, "-", "-", f"removed: {removed.why}")
            )
        if report.error:
            notes.append(f"{key}: error: {report.error}")
        notes.extend(f"{key}: {line}" for line in _missing(report)[:1])
        notes.extend(_missing(report)[1:])
        if (
            not report.replicas
            and not report.removed
            and not report.unscheduled
            and not report.error
        ):
            rows.append((key, "-", "-", "-", "-", "scaled to zero"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join([*lines, *([""] if notes else []), *notes]) + "\n"


def explain(report: DeploymentReport) -> str:
    """Why each replica of one deployment is where it is, and why missing ones fit nowhere."""
    lines = [
        f"ModelDeployment {report.namespace}/{report.name}: "
        f"{len(report.replicas)} of {report.desired_replicas} replicas placed"
    ]
    if report.error:
        lines.append(f"error: {report.error}")
    for replica in report.replicas:
        lines.append(
            f"replica {replica.index} ({replica.name}) on {replica.cluster}: {replica.why}"
        )
    for removed in report.removed:
        where = f"replica {removed.index} ({removed.name}) on {removed.cluster}"
        lines.append(f"{where} is removed: {removed.why}")
    lines.extend(_missing(report))
    return "\n".join(lines) + "\n"


def _missing(report: DeploymentReport) -> list[str]:
    """Why the unplaced replicas are missing: the error that holds the deployment, or the
    per-cluster reasons they fit nowhere. Never a heading with nothing under it."""
    if not report.unscheduled:
        return []
    count = f"{report.unscheduled} of {report.desired_replicas} replicas"
    if report.error:
        return [f"{count} are not placed until the error is fixed (placed ones are kept)"]
    if not report.reasons:
        return [f"{count} fit nowhere"]
    return [f"{count} fit nowhere:", *(f"  {reason}" for reason in report.reasons)]
