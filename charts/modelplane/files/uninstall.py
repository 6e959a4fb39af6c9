"""The chart's pre-delete hook: delete every Modelplane object, wait for the services to let go.

`helm uninstall` runs this (a Job of the release, in the control-plane image) before
it deletes the Deployments, so the services still run and release what they hold:
1. ModelServices, ModelDeployments, ModelReplicas, ModelEndpoints and ModelCaches
   (every namespace) are deleted; endpoint-manager tears each replica's workload
   down on its inference cluster and then releases the replica's finalizer. The
   phase ends when none of these is left.
2. InferenceGateways, InferenceClusters and InferenceClasses are deleted;
   cluster-provisioner releases each cluster's finalizer. The phase ends when none
   is left.
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

from modelplane import logs
from modelplane.kube import Json, Kube
from modelplane.wellknown import API

PHASES: tuple[tuple[str, ...], ...] = (
    ("modelservices", "modeldeployments", "modelreplicas", "modelendpoints", "modelcaches"),
    ("inferencegateways", "inferenceclusters", "inferenceclasses"),
)
"""Plurals deleted together; a phase starts once every earlier one is empty."""

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


def object_path(plural: str, obj: Json) -> str:
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    where = f"namespaces/{namespace}/" if namespace else ""
    return f"{API}/{where}{plural}/{meta['name']}"


def describe(plural: str, obj: Json) -> str:
    """`plural/[namespace/]name`, with the finalizers that hold it, if any."""
    meta = obj["metadata"]
    name = "/".join(p for p in (meta.get("namespace"), meta["name"]) if p)
    held = meta.get("finalizers") or []
    return f"{plural}/{name}" + (f" (held by {', '.join(held)})" if held else "")


def plan(remaining: Mapping[str, list[Json]]) -> Plan:
    """The step for the first phase with objects left (`remaining`: plural to the objects
    listed); objects already being deleted are waited on, not deleted again."""
    for phase in PHASES:
        listed = [(plural, obj) for plural in phase for obj in remaining.get(plural, [])]
        if listed:
            return Plan(
                delete=[
                    object_path(p, o)
                    for p, o in listed
                    if not o["metadata"].get("deletionTimestamp")
                ],
                waiting=[describe(p, o) for p, o in listed],
            )
    return Plan(delete=[], waiting=[])


async def list_remaining(kube: Kube) -> dict[str, list[Json]]:
    """Every object of every phase's kinds (a kind whose CRD is gone has none)."""
    out: dict[str, list[Json]] = {}
    for plural in (p for phase in PHASES for p in phase):
        listing = await kube.get(f"{API}/{plural}")
        out[plural] = list((listing or {}).get("items") or [])
    return out


async def run(kubeconfig: str | None, timeout_s: float) -> int:
    kube = await Kube.connect(kubeconfig, "modelplane-uninstall")
    deadline = time.monotonic() + timeout_s
    while True:
        step = plan(await list_remaining(kube))
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
