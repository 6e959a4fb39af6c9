"""Leader election on a coordination.k8s.io Lease, so two copies of a service can run.

`LeaderElector.run` keeps trying to hold the Lease `namespace/name` for
`identity`: it creates it when absent, renews it while it holds it, and takes it
over only once the holder has not renewed for the lease duration. Every write
carries the Lease's resourceVersion, so two copies never both win. `is_leader`
says whether this copy may reconcile now; it turns False as soon as a renewal
fails or is refused, and on `release` (a graceful stop hands over at once).

Requests: the leader renews every `renew_s` (half the lease duration) with one
PUT of the Lease as it last wrote it (a GET only after a refusal or an error);
a renewal with no answer within `renew_s / 2` counts as failed. A standby
watches the Lease (a `modelplane.cache.Cache` of that one object) and reads it
from there: it makes a request only to take over, when the Lease is released
or has lapsed, and wakes for that on the watch's event or when the lapse is
due. Until that watch has listed, and while the Lease still names this copy
(a renewal just failed), it tries again every `renew_s / 2`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import logging
from typing import Any

from modelplane.cache import Cache
from modelplane.kube import TRANSIENT, Json, Kube
from modelplane.leases import LEASE_DURATION_S, expired, parse_time

log = logging.getLogger("modelplane.leader")
RENEW_S = LEASE_DURATION_S / 2
"""Renewing at half the lease: 8 requests a minute, and one late or failed renewal
still leaves time before the Lease lapses."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _format(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        lease_duration_s: int = LEASE_DURATION_S,
        renew_s: float = RENEW_S,
    ) -> None:
        self.kube = kube
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration_s = lease_duration_s
        self.renew_s = renew_s
        self.is_leader = False
        self.changed = asyncio.Event()
        self.held: Json | None = None  # the Lease as this copy last wrote it
        self.watched = f"{self.collection}?fieldSelector=metadata.name={name}"
        self.cache = Cache(kube, [self.watched])
        self.seen = asyncio.Event()  # the watched Lease changed
        self.cache.listeners.append(lambda _path, _obj: self.seen.set())

    def _set(self, leader: bool) -> None:
        if not leader:
            self.held = None
        if leader != self.is_leader:
            self.is_leader = leader
            self.changed.set()
            log.info(
                "leadership changed",
                extra={"fields": {"lease": self.name, "identity": self.identity, "leader": leader}},
            )

    def _spec(self, acquired: str, transitions: int) -> dict[str, Any]:
        now = _format(_now())
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_duration_s,
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def _write(self, lease: Json) -> bool:
        written = await self.kube.replace(self.path, lease)
        self.held = written
        return written is not None

    async def _observed(self) -> Json | None:
        """The Lease: from the watch once it has listed, else from the API."""
        if self.cache.synced:
            found = self.cache.get(self.watched, self.name, self.namespace)
            return copy.deepcopy(found) if found is not None else None
        return await self.kube.get(self.path)

    async def try_once(self) -> bool:
        if self.held is not None:  # renewing what this copy wrote: no need to read it
            spec = self.held.get("spec") or {}
            self.held["spec"] = self._spec(
                spec.get("acquireTime", ""), spec.get("leaseTransitions") or 0
            )
            if await self._write(self.held):
                return True
        lease = await self._observed()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec("", 0),
            }
            self.held = await self.kube.create(self.collection, body)
            return self.held is not None
        spec = lease.get("spec") or {}
        mine = spec.get("holderIdentity") == self.identity
        if not mine and not expired(spec, _now()):
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(spec.get("acquireTime", "") if mine else "", transitions)
        return await self._write(lease)

    def _standby_wait(self) -> float:
        """How long a standby may wait for a watch event before the Lease could lapse."""
        if not self.cache.synced:
            return self.renew_s / 2
        lease = self.cache.get(self.watched, self.name, self.namespace)
        spec = (lease or {}).get("spec") or {}
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        holder = spec.get("holderIdentity")
        if lease is None or not holder or holder == self.identity or renewed is None:
            return self.renew_s / 2
        duration = int(spec.get("leaseDurationSeconds") or LEASE_DURATION_S)
        due = (renewed - _now()).total_seconds() + duration + 0.1
        return min(max(due, self.renew_s / 2), float(duration))

    async def run(self) -> None:
        watch = asyncio.create_task(self.cache.run())
        try:
            while True:
                self.seen.clear()
                try:
                    # A renewal that hangs past half the renew interval steps down well
                    # before the Lease could lapse and another copy take it.
                    self._set(await asyncio.wait_for(self.try_once(), self.renew_s / 2))
                except (*TRANSIENT, TimeoutError) as error:
                    log.warning("lease renewal failed", extra={"fields": {"error": str(error)}})
                    self._set(False)
                if self.is_leader:
                    await asyncio.sleep(self.renew_s)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.seen.wait(), self._standby_wait())
        finally:
            watch.cancel()

    async def release(self) -> None:
        """Give the Lease up now, so another copy takes over without waiting it out."""
        if not self.is_leader:
            return
        self._set(False)
        lease = await self.kube.get(self.path)
        if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
            lease["spec"]["holderIdentity"] = ""
            await self.kube.replace(self.path, lease)
