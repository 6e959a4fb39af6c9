"""The scheduler extension's health on an inference cluster, from its Lease (pure).

The extender holds the Lease `kube-system/modelplane-scheduler-extender` and renews
it while it serves (`scheduler_extender`). `judge(lease, now)` turns the Lease as
last seen into `status.schedulerExtension`:

- `Healthy`, accounting `Device`: a holder renewed it within its duration;
- `Unhealthy`, accounting `Node`: it lapsed or was released (the extender stopped);
- `Absent`, accounting `Node`: there is no such Lease (the extension is not installed).

and, while Healthy, the seconds until the Lease would lapse (and a tenth more), so
the cluster is reconciled again then even if nothing more is heard from it. Health is judged on
the provisioner's clock against the Lease's renewTime, as leader election does.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from modelplane.leases import duration_s, expired, renewed
from modelplane.wellknown import SCHEDULER_EXTENDER_LEASE, Json

LEASE_NAME = "/".join(SCHEDULER_EXTENDER_LEASE)
LEASES = (
    f"/apis/coordination.k8s.io/v1/namespaces/{SCHEDULER_EXTENDER_LEASE[0]}/leases"
    f"?fieldSelector=metadata.name={SCHEDULER_EXTENDER_LEASE[1]}"
)


def judge(lease: Mapping[str, Any] | None, now: datetime.datetime) -> tuple[Json, float | None]:
    """`status.schedulerExtension` for the Lease as seen at `now`, and the seconds until
    a healthy Lease lapses (None when it is not healthy)."""
    if lease is None:
        return {
            "health": "Absent",
            "accounting": "Node",
            "message": f"no Lease {LEASE_NAME}: the scheduler extension is not installed",
        }, None
    spec = dict(lease.get("spec") or {})
    holder = spec.get("holderIdentity") or ""
    duration = duration_s(spec)
    if expired(spec, now):
        why = "was released" if not holder else f"held by {holder} lapsed (not renewed)"
        return {
            "health": "Unhealthy",
            "accounting": "Node",
            "message": f"Lease {LEASE_NAME} {why}: the fleet counts whole nodes",
        }, None
    last = renewed(spec)
    assert last is not None  # not expired
    left = (last - now).total_seconds() + duration
    return {
        "health": "Healthy",
        "accounting": "Device",
        "message": f"Lease {LEASE_NAME} held by {holder}, renewed within {duration}s: "
        "the fleet counts devices per node",
    }, max(left, 0.0) + 0.1
