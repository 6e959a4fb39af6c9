"""The chart's pre-delete hook: delete every Modelplane object, wait for the services to let go.

`helm uninstall` runs this (a Job of the release, in the control-plane image) before
it deletes the Deployments, so the services still run and release what they hold:
1. ModelServices, ModelDeployments, ModelReplicas, ModelEndpoints and ModelCaches
   (every namespace) are deleted; endpoint-manager tears each replica's workload
   down on its inference cluster and then releases the replica's finalizer;
   cache-hydrator removes each cache's copies once no replica uses it and then
   releases the cache's finalizer. The phase ends when none of these is left.
2. InferenceGateways, InferenceClusters and InferenceClasses are deleted;
   cluster-provisioner releases each cluster's finalizer. The phase ends when none
   is left.
3. Nothing is deleted: the phase waits until gateway-config has pruned the objects
   it made (its managed-by label on Gateways, HTTPRoutes, Services, EndpointSlices,
   BackendTLSPolicies and ConfigMaps), as it does once nothing routes through them.
Exit 0 once nothing is left; 1 after `--timeout` seconds, logging each object still
there with the finalizers that hold it (`helm uninstall` then fails and keeps the
release, so the services keep running and a second uninstall can finish the job).

`plan` decides (pure); `main` lists, deletes and waits through the Kubernetes API
(in-cluster service account by default, `--kubeconfig` otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gateway_config.controller import COLLECTIONS, MANAGED_KINDS
from gateway_config.render import MANAGER
from modelplane import logs
from modelplane.kube import Json, Kube
from modelplane.wellknown import API, MANAGED_BY


@dataclass(frozen=True)
class Collection:
    """One kind, cluster-wide: `path` lists it (`selector` narrowing it), `plural` names it;
    `delete` False: waited on only (the service that made the objects removes them)."""

    plural: str
    path: str
    selector: str | None = None
    delete: bool = True


def modelplane_kinds(*plurals: str) -> tuple[Collection, ...]:
    return tuple(Collection(plural, f"{API}/{plural}") for plural in plurals)


def gateway_config_objects() -> tuple[Collection, ...]:
    selector = f"{MANAGED_BY}={MANAGER}"
    return tuple(
        Collection(COLLECTIONS[kind][1], f"{COLLECTIONS[kind][0]}/{COLLECTIONS[kind][1]}",
                   selector, delete=False)
        for kind in MANAGED_KINDS
    )  # fmt: skip


PHASES: tuple[tuple[Collection, ...], ...] = (
    modelplane_kinds(
        "modelservices", "modeldeployments", "modelreplicas", "modelendpoints", "modelcaches"
    ),
    modelplane_kinds("inferencegateways", "inferenceclusters", "inferenceclasses"),
    gateway_config_objects(),
)
"""A phase starts once every earlier one is empty."""

POLL_S = 2.0
log = logging.getLogger("modelplane.uninstall")


@dataclass(frozen=True)
class Plan:
    """What to do now: delete `delete` (object paths), or wait on `waiting`, or stop."""

    delete: list[str]
    waiting: list[str]

    @property
    def done(self) -> bool:
        return not self.delete and not self.waiting


def object_path(collection: Collection, obj: Json) -> str:
    """The object's API path, from its collection's (all namespaces, or one)."""
    meta = obj["metadata"]
    base, _, plural = collection.path.rpartition("/")
    if meta.get("namespace") and "/namespaces/" not in base:
        base = f"{base}/namespaces/{meta['namespace']}"
    return f"{base}/{plural}/{meta['name']}"


def describe(plural: str, obj: Json) -> str:
    """`plural/[namespace/]name`, with the finalizers that hold it, if any."""
    meta = obj["metadata"]
    name = "/".join(p for p in (meta.get("namespace"), meta["name"]) if p)
    held = meta.get("finalizers") or []
    return f"{plural}/{name}" + (f" (held by {', '.join(held)})" if held else "")


Phases = tuple[tuple[Collection, ...], ...]


def plan(remaining: Mapping[str, list[Json]], phases: Phases = PHASES) -> Plan:
    """The step for the first phase with objects left (`remaining`: plural to the objects
    listed); objects already being deleted, or only waited on, are not deleted."""
    for phase in phases:
        listed = [(c, obj) for c in phase for obj in remaining.get(c.plural, [])]
        if listed:
            return Plan(
                delete=[
                    object_path(c, o)
                    for c, o in listed
                    if c.delete and not o["metadata"].get("deletionTimestamp")
                ],
                waiting=[describe(c.plural, o) for c, o in listed],
            )
    return Plan(delete=[], waiting=[])


async def list_remaining(kube: Kube, phases: Phases) -> dict[str, list[Json]]:
    """Every object of every phase's collections (a kind whose CRD is gone has none)."""
    out: dict[str, list[Json]] = {}
    for collection in (c for phase in phases for c in phase):
        params = {"labelSelector": collection.selector} if collection.selector else None
        listing = await kube.get(collection.path, params)
        out[collection.plural] = list((listing or {}).get("items") or [])
    return out


async def run(kubeconfig: str | None, timeout_s: float, phases: Phases = PHASES) -> int:
    """Delete and wait, phase by phase; 0 once nothing is left, 1 at `timeout_s`."""
    kube = await Kube.connect(kubeconfig, "modelplane-uninstall")
    deadline = time.monotonic() + timeout_s
    while True:
        step = plan(await list_remaining(kube, phases), phases)
        if step.done:
            log.info("every Modelplane object is gone")
            return 0
        if time.monotonic() >= deadline:
            for what in step.waiting:
                log.error("still there", extra={"fields": {"object": what}})
            return 1
        for path in step.delete:
            log.info("deleting", extra={"fields": {"path": path}})
            await kube.delete(path)
        await asyncio.sleep(POLL_S)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="uninstall.py", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", help="the control cluster (default: in-cluster)")
    p.add_argument("--timeout", type=float, default=270.0, help="seconds before giving up")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure()
    return asyncio.run(run(args.kubeconfig, args.timeout))


if __name__ == "__main__":
    raise SystemExit(main())
