"""The node agent process: registers nodes and devices, keeps them alive, runs their pods.

`main` reads the agent's config, moves the process into a mount namespace of its
own where the cluster's hosts file covers `/etc/hosts` (so the processes it
starts resolve pod names such as the LeaderWorkerSet leader address), connects
with its client certificate and then:

- publishes DeviceClasses, Nodes (with Ready status), Leases and ResourceSlices,
  and deletes nodes of its cluster that the config no longer has;
- renews every Lease every few seconds and re-posts node status every minute;
- lists and watches bound pods, hands each pod on its nodes an IP from the node's
  range (keeping the one its status already shows) and a `PodWorker`;
- watches Services, ConfigMaps, Secrets, PersistentVolumeClaims and
  PersistentVolumes (one informer cache): Services' variables go into
  containers' environments and their names into the hosts file (`serviceenv`:
  the fallback for cluster DNS); environments and volumes read the rest from
  the cache, so keeping volumes current costs no requests;
- answers `GET /readyz` with `ok` once its nodes are registered (and `/healthz`,
  `/metrics`, as every service does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from modelplane import statusserver
from modelplane.cache import Cache
from modelplane.kube import TRANSIENT, GoneError, Json, Kube

from modelplane_localfleet.nodeagent import config as agent_config
from modelplane_localfleet.nodeagent import mounts, objects, serviceenv
from modelplane_localfleet.nodeagent.config import AGENT_LABEL, AgentConfig, NodePlan
from modelplane_localfleet.nodeagent.images import ImageStore
from modelplane_localfleet.nodeagent.podworker import PodWorker

log = logging.getLogger("nodeagent")
SERVICES = "/api/v1/services"
WATCHED = (
    SERVICES,
    "/api/v1/configmaps",
    "/api/v1/secrets",
    "/api/v1/persistentvolumeclaims",
    "/api/v1/persistentvolumes",
)
FIELD_MANAGER = "modelplane-node-agent"
LEASE_RENEW_S = 5.0
STATUS_REPOST_S = 60.0
RETRY_S = 1.0
TERMINAL = ("Succeeded", "Failed")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def cover_hosts(hosts_file: Path) -> str:
    """Enter a private mount namespace where `hosts_file` is `/etc/hosts`; the old content."""
    base = Path("/etc/hosts").read_text()
    hosts_file.write_text(base)
    mounts.bind_privately([(str(hosts_file).encode(), b"/etc/hosts")])
    return base


class Addresses:
    """Pod IPs per node: each pod keeps its address until it is gone; a freed address
    goes to the back of the line, so a new pod does not take one that just left."""

    def __init__(self, nodes: Mapping[str, NodePlan]) -> None:
        self.free = {name: plan.pod_addresses() for name, plan in nodes.items()}
        self.owner: dict[str, tuple[str, str]] = {}

    def take(self, node: str, uid: str, wanted: str | None) -> str:
        pool = self.free[node]
        address = wanted if wanted in pool else (pool[0] if pool else None)
        if address is None:
            raise RuntimeError(f"node {node} has no free pod address left")
        pool.remove(address)
        self.owner[uid] = (node, address)
        return address

    def release(self, uid: str) -> None:
        node, address = self.owner.pop(uid, ("", ""))
        if node:
            self.free[node].append(address)


class Agent:
    def __init__(self, cfg: AgentConfig, kube: Kube, state: Path, hosts_base: str) -> None:
        self.cfg = cfg
        self.kube = kube
        self.state = state
        self.nodes = {plan.name: plan for plan in cfg.nodes()}
        self.addresses = Addresses(self.nodes)
        self.workers: dict[str, PodWorker] = {}
        self.finished: set[str] = set()
        self.removing: set[str] = set()
        self.background: set[asyncio.Task[None]] = set()
        self.hostnames: dict[str, list[str]] = {}
        self.hosts_file = state / "hosts"
        self.images = ImageStore(state / "images")
        self.hosts_base = hosts_base
        self.registered = False
        self.started = _now()
        self.cache = Cache(kube, WATCHED)
        self.cache.listeners.append(self._changed)

    # -- nodes and devices ---------------------------------------------------------

    async def register(self) -> None:
        devices = [d for plan in self.nodes.values() for d in plan.pool.devices]
        for device_class in objects.device_classes(devices):
            await self.kube.apply(
                f"/apis/{objects.RESOURCE_API}/deviceclasses/{device_class['metadata']['name']}",
                device_class,
            )
        for plan in self.nodes.values():
            node = await self.kube.apply(
                f"/api/v1/nodes/{plan.name}", objects.node(plan, self.cfg.cluster)
            )
            await self._post_status(plan)
            await self._renew(plan)
            for item in objects.resource_slices(plan, node["metadata"]["uid"]):
                path = f"/apis/{objects.RESOURCE_API}/resourceslices/{item['metadata']['name']}"
                await self.kube.apply(path, item)
        listing = await self.kube.get(
            "/api/v1/nodes", {"labelSelector": f"{AGENT_LABEL}={self.cfg.cluster}"}
        )
        for stale in (listing or {}).get("items", []):
            if stale["metadata"]["name"] not in self.nodes:
                log.info("deleting node %s: no longer in the config", stale["metadata"]["name"])
                await self.kube.delete(f"/api/v1/nodes/{stale['metadata']['name']}")
        self.registered = True
        log.info("registered %d nodes of cluster %s", len(self.nodes), self.cfg.cluster)

    async def _post_status(self, plan: NodePlan) -> None:
        await self.kube.apply(
            f"/api/v1/nodes/{plan.name}/status", objects.node_status(plan, _now(), self.started)
        )

    async def _renew(self, plan: NodePlan) -> None:
        path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{objects.LEASE_NAMESPACE}/leases/{plan.name}"
        )
        await self.kube.apply(path, objects.lease(plan, _now()))

    async def heartbeat(self) -> None:
        last_status = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(LEASE_RENEW_S)
            repost = asyncio.get_running_loop().time() - last_status > STATUS_REPOST_S
            try:
                for plan in self.nodes.values():
                    await self._renew(plan)
                    if repost:
                        await self._post_status(plan)
                if repost:
                    last_status = asyncio.get_running_loop().time()
            except TRANSIENT as error:
                log.warning("heartbeat failed: %s", error)

    # -- pods ----------------------------------------------------------------------

    async def pods(self) -> None:
        selector = {"fieldSelector": "spec.nodeName!="}
        while True:
            try:
                listing = await self.kube.get("/api/v1/pods", selector)
                assert listing is not None
                items = listing.get("items", [])
                seen = {p["metadata"]["uid"] for p in items}
                for uid in list(self.workers):
                    if uid not in seen:
                        self._gone(uid)
                for pod in items:
                    self._observe(pod)
                version = listing["metadata"]["resourceVersion"]
                async for event in self.kube.watch(
                    "/api/v1/pods", {**selector, "resourceVersion": version}
                ):
                    pod = event["object"]
                    if event["type"] == "BOOKMARK":
                        continue
                    if event["type"] == "DELETED":
                        self._gone(pod["metadata"]["uid"])
                    else:
                        self._observe(pod)
            except TRANSIENT as error:
                if not isinstance(error, GoneError):
                    log.warning("pod watch interrupted: %s", error)
                await asyncio.sleep(RETRY_S)

    def _observe(self, pod: Json) -> None:
        uid = pod["metadata"]["uid"]
        node = pod["spec"].get("nodeName")
        if node not in self.nodes:
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        if uid in self.finished or (pod.get("status") or {}).get("phase") in TERMINAL:
            # Nothing runs for it any more; a deletion still needs kubelet to finish it.
            self.finished.add(uid)
            if pod["metadata"].get("deletionTimestamp") and uid not in self.removing:
                self.removing.add(uid)
                task = asyncio.create_task(self.remove(pod))
                self.background.add(task)
                task.add_done_callback(self.background.discard)
            return
        plan = self.nodes[node]
        if pod["spec"].get("hostNetwork"):
            address = plan.address
        else:
            address = self.addresses.take(node, uid, (pod.get("status") or {}).get("podIP"))
        worker = PodWorker(self, pod, address, plan.address, node)
        self.workers[uid] = worker
        self._name_pod(pod, address)
        worker.update(pod)
        worker.start()
        assert worker.task is not None
        worker.task.add_done_callback(lambda _: self._finished(uid))

    def _gone(self, uid: str) -> None:
        """The pod object is gone (deleted with no grace): stop its processes now."""
        worker = self.workers.get(uid)
        if worker is not None:
            worker.pod["metadata"]["deletionGracePeriodSeconds"] = 0
            worker.deleting.set()

    def _finished(self, uid: str) -> None:
        worker = self.workers.pop(uid, None)
        self.finished.add(uid)
        if worker is not None and worker.task is not None and not worker.task.cancelled():
            error = worker.task.exception()
            if error is not None:
                log.error("pod %s: worker failed: %r", worker.name, error)
        if not (worker and worker.pod["spec"].get("hostNetwork")):
            self.addresses.release(uid)
        if self.hostnames.pop(uid, None) is not None:
            self._write_hosts()

    # -- names ---------------------------------------------------------------------

    def _name_pod(self, pod: Json, address: str) -> None:
        spec, meta = pod["spec"], pod["metadata"]
        if not spec.get("subdomain"):
            return
        short = f"{spec.get('hostname') or meta['name']}.{spec['subdomain']}.{meta['namespace']}"
        self.hostnames[meta["uid"]] = [address, short, f"{short}.svc", f"{short}.svc.cluster.local"]
        self._write_hosts()

    def seen_services(self) -> list[Json]:
        """The cluster's Services as its pods reach them (see `serviceenv.as_seen`)."""
        direct = None if self.cfg.routes_cluster_ips else self.cfg.apiserver
        return serviceenv.as_seen(self.cache.items(SERVICES), direct)

    def _changed(self, path: str, _obj: Json) -> None:
        if path == SERVICES:
            self._write_hosts()

    def _write_hosts(self) -> None:
        lines = [self.hosts_base.rstrip("\n"), "# pods of this cluster (modelplane node agent)"]
        lines += [" ".join(names) for names in self.hostnames.values()]
        lines.append("# Services of this cluster (the node agent's stand-in for cluster DNS)")
        lines += [" ".join(names) for names in serviceenv.host_names(self.seen_services())]
        text = "\n".join(lines) + "\n"
        # Rewrite in place: the bind mount over /etc/hosts follows the inode, not the name.
        with self.hosts_file.open("r+") as handle:
            handle.truncate(0)
            handle.write(text)

    # -- the worker's host ---------------------------------------------------------

    async def read_objects(
        self, kind: str, namespace: str, names: set[str]
    ) -> Mapping[tuple[str, str], Mapping[str, str]]:
        import base64

        out: dict[tuple[str, str], Mapping[str, str]] = {}
        for name in sorted(names):
            found = await self.get_object(kind, namespace, name)
            if found is None:
                continue
            data: dict[str, str] = dict(found.get("data") or {})
            if kind == "secrets":
                data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
                data.update(found.get("stringData") or {})
            out[(namespace, name)] = data
        return out

    async def get_object(self, kind: str, namespace: str, name: str) -> Json | None:
        """A ConfigMap, Secret, PersistentVolumeClaim or PersistentVolume (`kind` plural,
        lower case; `namespace` empty for a volume) from the watched cache."""
        await self.cache.wait_synced()
        return self.cache.get(f"/api/v1/{kind}", name, namespace)

    async def request_token(self, path: str, body: Json) -> Json:
        answer = await self.kube.create(path, body)
        if answer is None:
            raise ValueError(f"TokenRequest {path}: no answer")
        return answer

    async def service_env(self, pod: Json) -> dict[str, str]:
        await self.cache.wait_synced()
        return serviceenv.service_env(self.seen_services(), pod)

    async def patch_status(self, pod: Json, status: Json) -> None:
        meta = pod["metadata"]
        await self.kube.merge_patch(
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
            {"metadata": {"uid": meta["uid"]}, "status": status},
        )

    async def event(self, pod: Json, kind: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        host = pod["spec"].get("nodeName", "")
        body = objects.event({**pod, "kind": "Pod"}, kind, reason, message, "kubelet", host, _now())
        log.info("pod %s/%s: %s %s: %s", meta["namespace"], meta["name"], kind, reason, message)
        with contextlib.suppress(*TRANSIENT):
            await self.kube.create(f"/api/v1/namespaces/{meta['namespace']}/events", body)

    async def remove(self, pod: Json) -> None:
        meta = pod["metadata"]
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        for _ in range(10):
            try:
                await self.kube.delete(path, body)
                return
            except TRANSIENT as error:
                log.warning("pod %s/%s: delete failed: %s", meta["namespace"], meta["name"], error)
                await asyncio.sleep(RETRY_S)

    def pod_dir(self, pod: Json) -> Path:
        meta = pod["metadata"]
        return self.state / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"

    # -- health ----------------------------------------------------------------------

    def readiness(self) -> str | None:
        return None if self.registered else "registering nodes"


async def run(cfg: AgentConfig, kubeconfig: str, state: Path, hosts_base: str) -> None:
    kube = await Kube.connect(kubeconfig, FIELD_MANAGER)
    agent = Agent(cfg, kube, state, hosts_base)
    health = asyncio.create_task(
        statusserver.serve(cfg.health_address, cfg.health_port, agent.readiness)
    )
    while True:
        try:
            await agent.register()
            break
        except TRANSIENT as error:
            log.warning("registering nodes failed, retrying: %s", error)
            await asyncio.sleep(RETRY_S)
    await asyncio.gather(health, agent.heartbeat(), agent.cache.run(), agent.pods())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelplane-node-agent", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state", required=True, type=Path, help="directory for pods and hosts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cfg = agent_config.load(args.config)
    args.state.mkdir(parents=True, exist_ok=True)
    hosts_base = cover_hosts(args.state / "hosts")
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    asyncio.run(run(cfg, args.kubeconfig, args.state, hosts_base))
