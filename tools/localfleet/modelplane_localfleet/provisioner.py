"""`python -m modelplane_localfleet.provisioner`: the harness's RWX provisioner, one per
inference cluster (a harness process, like the node agent; not a real CSI driver).

observe (an informer cache of PersistentVolumeClaims, PersistentVolumes and
StorageClasses) -> decide (`provisioning.decide`, pure) -> apply: make the volume's
directory (mode 0777, as any pod user may write there) and create the
PersistentVolume; remove a released volume's directory and then the object; an
Event on the claim for each volume provisioned (`ProvisioningSucceeded`) and each
claim refused (`ProvisioningFailed`, once per claim and message). The real volume
binder of kube-controller-manager binds claim and volume.

It acts as the user `modelplane:rwx-provisioner` (`rbac_objects`), holds the Lease
`kube-system/rwx-provisioner` while it writes, and answers `/healthz`, `/readyz`
and `/metrics` on `--status-address`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import shutil
import socket
from pathlib import Path
from typing import Any

from modelplane import logs
from modelplane.cache import Cache
from modelplane.kube import Json, Kube
from modelplane.leader import LeaderElector
from modelplane.loop import ReconcileLoop
from modelplane.service import run_controller

from modelplane_localfleet.nodeagent.objects import event
from modelplane_localfleet.provisioning import (
    PROVISIONER,
    Action,
    Create,
    Delete,
    Refuse,
    decide,
)
from modelplane_localfleet.rbac import bind_to_user

SERVICE = "rwx-provisioner"
USER = "modelplane:rwx-provisioner"
ROLE_NAME = "modelplane-localfleet:rwx-provisioner"
LEASE_NAMESPACE = "kube-system"
CLAIMS = "/api/v1/persistentvolumeclaims"
VOLUMES = "/api/v1/persistentvolumes"
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
RESYNC_S = 30.0
log = logging.getLogger("localfleet.provisioner")


def rbac_objects(user: str = USER) -> list[dict[str, Any]]:
    """Volumes (write), claims and classes (read), events (create), its Lease."""
    read = ["get", "list", "watch"]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": ROLE_NAME},
        "rules": [
            {"apiGroups": [""], "resources": ["persistentvolumes"],
             "verbs": [*read, "create", "delete"]},
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": read},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": [*read, "create", "update", "patch"]},
        ],
    }  # fmt: skip
    return bind_to_user(role, user)


def command(python: str, kubeconfig: Path, root: Path, status_address: str) -> list[str]:
    return [
        python, "-m", "modelplane_localfleet.provisioner", f"--kubeconfig={kubeconfig}",
        f"--root={root}", f"--status-address={status_address}",
    ]  # fmt: skip


class Provisioner:
    """Keeps every claim of the fleet's RWX class provisioned (see the module docstring)."""

    def __init__(self, kube: Kube, elector: LeaderElector, cache: Cache, root: Path) -> None:
        self.kube = kube
        self.elector = elector
        self.cache = cache
        self.root = root
        self.refused: set[tuple[str, str, str]] = set()
        self.host = socket.gethostname()

    async def reconcile_all(self) -> float | None:
        if not self.elector.is_leader:
            return None
        claims = self.cache.items(CLAIMS)
        actions = decide(claims, self.cache.items(VOLUMES), self.cache.items(CLASSES), self.root)
        by_key = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in claims}
        for action in actions:
            await self._apply(action, by_key)
        return None

    async def _apply(self, action: Action, claims: dict[tuple[str, str], Json]) -> None:
        if isinstance(action, Create):
            action.directory.mkdir(parents=True, exist_ok=True)
            action.directory.chmod(0o777)
            created = await self.kube.create(VOLUMES, action.volume)
            ref = action.volume["spec"]["claimRef"]
            claim = claims.get((ref["namespace"], ref["name"]))
            name = action.volume["metadata"]["name"]
            log.info("provisioned %s for %s/%s", name, ref["namespace"], ref["name"])
            if created is not None and claim is not None:
                message = f"Successfully provisioned volume {name} ({action.directory})"
                await self._event(claim, "Normal", "ProvisioningSucceeded", message)
        elif isinstance(action, Delete):
            shutil.rmtree(action.directory, ignore_errors=True)
            await self.kube.delete(f"{VOLUMES}/{action.name}")
            log.info("deleted %s and %s", action.name, action.directory)
        elif isinstance(action, Refuse):
            key = (action.namespace, action.claim, action.message)
            claim = claims.get((action.namespace, action.claim))
            if key not in self.refused and claim is not None:
                log.warning("%s", action.message)
                await self._event(claim, "Warning", "ProvisioningFailed", action.message)
                self.refused.add(key)

    async def _event(self, claim: Json, kind: str, reason: str, message: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        body = event(claim, kind, reason, message, PROVISIONER, self.host, now)
        await self.kube.create(f"/api/v1/namespaces/{claim['metadata']['namespace']}/events", body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelplane-localfleet-provisioner", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=Path, help="the volumes' parent folder")
    parser.add_argument("--status-address", required=True, help="HOST:PORT of /readyz")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)

    def make_loop(kube: Kube, elector: LeaderElector) -> ReconcileLoop:
        cache = Cache(kube, (CLAIMS, VOLUMES, CLASSES))
        provisioner = Provisioner(kube, elector, cache, root)
        return ReconcileLoop(
            SERVICE, kube, cache.paths, provisioner.reconcile_all, elector, RESYNC_S,
            kind="PersistentVolumeClaim", cache=cache,
        )  # fmt: skip

    asyncio.run(
        run_controller(SERVICE, args.kubeconfig, LEASE_NAMESPACE, args.status_address, make_loop)
    )


if __name__ == "__main__":
    main()
