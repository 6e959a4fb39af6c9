"""A coordination.k8s.io Lease read as data (pure): when it was renewed and whether it lapsed.

`modelplane.leader` holds Leases with these rules; cluster-provisioner reads the
scheduler extender's Lease with them.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

LEASE_DURATION_S = 15
"""How long a Lease holds without a renewal, when it does not say."""


def parse_time(text: str | None) -> datetime.datetime | None:
    """A Lease's MicroTime (RFC 3339) as an aware datetime; None when absent."""
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def renewed(spec: Mapping[str, Any]) -> datetime.datetime | None:
    """When the holder last renewed (or acquired) the Lease."""
    return parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))


def duration_s(spec: Mapping[str, Any]) -> int:
    return int(spec.get("leaseDurationSeconds") or LEASE_DURATION_S)


def expired(spec: Mapping[str, Any], now: datetime.datetime) -> bool:
    """Whether a Lease's holder has let it lapse (or there is none)."""
    last = renewed(spec)
    if not spec.get("holderIdentity") or last is None:
        return True
    return now - last > datetime.timedelta(seconds=duration_s(spec))
