"""One cluster of the local fleet: its certificates, configuration and processes.

Every cluster runs etcd, kube-apiserver, kube-controller-manager and
kube-scheduler on its own address inside the fleet's namespace, with
client-certificate auth, RBAC, a Service range of its own
(`ClusterPlan.service_cidr`) and the aggregation layer (a front-proxy CA and
client certificate of its own, `aggregation_flags`). Inference clusters add
the LeaderWorkerSet controller (with its webhooks), the control cluster
kube-proxy (and, with `up --keda`, KEDA), and every cluster gets the Gateway
API CRDs, the `traefik` GatewayClass, a Traefik process and a node agent (see
`addons`).

Guarantees:
- Certificates and configuration are written once and reused, so a cluster
  that is stopped (even killed) comes back with its data and its kubeconfig
  still valid.
- `start` is idempotent: it starts only the components that do not run, then
  waits until every component answers its health probe.
- `stop` signals only processes this cluster started (see `process`); abruptly
  (SIGKILL) when asked, to simulate losing the cluster.
- Clients (kubectl, probes) always run inside the namespace: directly when the
  calling thread has entered it, else wrapped in `ip netns exec`.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelplane_localfleet import addons, process
from modelplane_localfleet.kubeconfig import dump, kubeconfig
from modelplane_localfleet.layout import PORTS, ClusterPlan
from modelplane_localfleet.netns import NetworkNamespace
from modelplane_localfleet.pki import CertificateAuthority, KeyPair, service_account_key
from modelplane_localfleet.probe import Probe

READY_TIMEOUT_S = 120.0
FRONT_PROXY_USER = "front-proxy-client"
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Binaries:
    """Where the fleet's executables and upstream manifests are."""

    kubernetes: (
        Path  # cache entry with kube-apiserver, kube-scheduler, kube-controller-manager, kubectl
    )
    etcd: Path
    lws: Path  # cache entry: lws-manager, crds/, webhook/, rbac/
    gateway_api: Path  # cache entry: crds/
    traefik: Path
    crane: Path  # serves the fleet's registry (see `registry`)
    keda: Path  # cache entry: operator, adapter, webhooks, crds/, rbac/, ... (built on demand)

    @property
    def kubectl(self) -> Path:
        return self.kubernetes / "kubectl"


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """How to run one component and how to tell it is healthy."""

    name: str
    argv: list[str]
    probe: Probe
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    cluster: str
    component: str
    pid: int | None
    healthy: bool
    detail: str


class Cluster:
    """A cluster planned by `plan`, with its files under `state`."""

    def __init__(
        self,
        plan: ClusterPlan,
        state: Path,
        namespace: NetworkNamespace,
        binaries: Binaries,
        say: Say = print,
    ) -> None:
        self.plan = plan
        self.state = state
        self.namespace = namespace
        self.binaries = binaries
        self.say = say

    # -- files -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def kubeconfig_path(self) -> Path:
        return self.state / "kubeconfig" / f"{self.name}.yaml"

    @property
    def pki_dir(self) -> Path:
        return self.state / "pki" / self.name

    @property
    def config_dir(self) -> Path:
        return self.state / "config" / self.name

    @property
    def etcd_dir(self) -> Path:
        return self.state / "etcd" / self.name

    @property
    def run_dir(self) -> Path:
        return self.state / "run" / self.name

    @property
    def storage_dir(self) -> Path:
        """The directories of the cluster's provisioned volumes (inference clusters)."""
        return self.state / "storage" / self.name

    @property
    def log_dir(self) -> Path:
        return self.state / "logs" / self.name

    def kubeconfig_for(self, component: str) -> Path:
        return self.config_dir / f"{component}.kubeconfig"

    def owned_paths(self) -> list[Path]:
        """Everything `remove` deletes (logs stay for the post-mortem)."""
        return [
            self.kubeconfig_path,
            self.pki_dir,
            self.config_dir,
            self.etcd_dir,
            self.run_dir,
            self.storage_dir,
        ]

    def ca(self) -> CertificateAuthority:
        pair = KeyPair(
            (self.pki_dir / "ca.crt").read_bytes(), (self.pki_dir / "ca.key").read_bytes()
        )
        return CertificateAuthority.load(pair)

    def _write(self, path: Path, data: bytes | str, private: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)
        if private:
            temporary.chmod(0o600)
        temporary.replace(path)

    def ensure_files(self) -> None:
        """Write the CA, certificates, kubeconfigs and configs this cluster lacks."""
        now = datetime.datetime.now(datetime.UTC)
        pki = self.pki_dir
        if not (pki / "ca.key").exists():
            created = CertificateAuthority.create(f"{self.name}-ca", now)
            self._write(pki / "ca.crt", created.pair().cert_pem)
            self._write(pki / "ca.key", created.pair().key_pem, private=True)
        ca = self.ca()
        address = self.plan.address
        if not (pki / "serving.key").exists():
            serving = ca.issue(
                self.name,
                now,
                server=True,
                ips=sorted({address, self.plan.kubernetes_service_ip}),
                dns_names=[
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                ],
            )
            self._write(pki / "serving.crt", serving.cert_pem)
            self._write(pki / "serving.key", serving.key_pem, private=True)
        if not (pki / "sa.key").exists():
            signing = service_account_key()
            self._write(pki / "sa.pub", signing.cert_pem)
            self._write(pki / "sa.key", signing.key_pem, private=True)
        self._ensure_front_proxy(now)
        if not (pki / "admin.key").exists():
            admin = ca.issue("admin", now, organizations=["system:masters"], client=True)
            self._write(pki / "admin.crt", admin.cert_pem)
            self._write(pki / "admin.key", admin.key_pem, private=True)
        if not self.kubeconfig_path.exists():
            admin = KeyPair((pki / "admin.crt").read_bytes(), (pki / "admin.key").read_bytes())
            self._write(self.kubeconfig_path, self._kubeconfig("admin", admin), private=True)
        users = {
            "kube-controller-manager": "system:kube-controller-manager",
            "kube-scheduler": "system:kube-scheduler",
            **addons.users(self.plan),
        }
        for component, user in users.items():
            path = self.kubeconfig_for(component)
            if not path.exists():
                identity = ca.issue(user, now, client=True)
                self._write(path, self._kubeconfig(user, identity), private=True)
        self._write(self.config_dir / "kube-scheduler.yaml", self._scheduler_config())
        addons.write_files(self, now)

    def _ensure_front_proxy(self, now: datetime.datetime) -> None:
        """The aggregation layer's own CA and the client certificate kube-apiserver proxies
        with to aggregated API servers (as kubeadm does: a CA apart from the cluster's, so
        no cluster client certificate can pose as the front proxy)."""
        pki = self.pki_dir
        if not (pki / "front-proxy-ca.key").exists():
            created = CertificateAuthority.create(f"{self.name}-front-proxy-ca", now)
            self._write(pki / "front-proxy-ca.crt", created.pair().cert_pem)
            self._write(pki / "front-proxy-ca.key", created.pair().key_pem, private=True)
        if not (pki / "front-proxy-client.key").exists():
            pair = KeyPair(
                (pki / "front-proxy-ca.crt").read_bytes(), (pki / "front-proxy-ca.key").read_bytes()
            )
            client = CertificateAuthority.load(pair).issue(FRONT_PROXY_USER, now, client=True)
            self._write(pki / "front-proxy-client.crt", client.cert_pem)
            self._write(pki / "front-proxy-client.key", client.key_pem, private=True)

    def aggregation_flags(self) -> list[str]:
        """kube-apiserver's aggregation layer: it authenticates to aggregated API servers
        (KEDA's metrics adapter) with the front-proxy client certificate, which they trust
        through `extension-apiserver-authentication`, and dials their Service's endpoints
        directly (the cluster addresses are local; no ClusterIP routing needed)."""
        pki = self.pki_dir
        return [
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_USER}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=true",
        ]

    def _kubeconfig(self, user: str, identity: KeyPair) -> str:
        ca_pem = (self.pki_dir / "ca.crt").read_bytes()
        return dump(kubeconfig(self.name, self.plan.server, ca_pem, user, identity))

    def _scheduler_config(self) -> str:
        return (
            "apiVersion: kubescheduler.config.k8s.io/v1\n"
            "kind: KubeSchedulerConfiguration\n"
            "clientConnection:\n"
            f"  kubeconfig: {self.kubeconfig_for('kube-scheduler')}\n"
            "leaderElection:\n"
            "  leaderElect: false\n"
        )

    # -- components --------------------------------------------------------------------

    def https_probe(self, port: int, path: str, *, authenticated: bool) -> Probe:
        pki = self.pki_dir
        return Probe(
            f"https://{self.plan.address}:{port}{path}",
            "ok",
            ca=pki / "ca.crt",
            client_cert=pki / "admin.crt" if authenticated else None,
            client_key=pki / "admin.key" if authenticated else None,
        )

    def serving_flags(self) -> list[str]:
        """The cluster's serving certificate, for a control-plane binary's HTTPS port."""
        pki = self.pki_dir
        return [
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
        ]

    def core_components(self) -> list[ComponentSpec]:
        """etcd, kube-apiserver, kube-controller-manager and kube-scheduler."""
        pki, address, k8s = self.pki_dir, self.plan.address, self.binaries.kubernetes
        etcd_url = f"http://{address}:{PORTS.etcd}"
        peer_url = f"http://{address}:{PORTS.etcd_peer}"
        serving = self.serving_flags()
        return [
            ComponentSpec(
                "etcd",
                [
                    str(self.binaries.etcd),
                    f"--name={self.name}",
                    f"--data-dir={self.etcd_dir}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster={self.name}={peer_url}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
                Probe(f"{etcd_url}/health", '"health":"true"'),
            ),
            ComponentSpec(
                "kube-apiserver",
                [
                    str(k8s / "kube-apiserver"),
                    f"--etcd-servers={etcd_url}",
                    f"--bind-address={address}",
                    f"--advertise-address={address}",
                    f"--secure-port={PORTS.apiserver}",
                    f"--cert-dir={pki}",
                    *serving,
                    f"--client-ca-file={pki / 'ca.crt'}",
                    "--authorization-mode=Node,RBAC",
                    f"--service-cluster-ip-range={self.plan.service_cidr}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--allow-privileged=true",
                    # A namespace address as advertise address fails the `kubernetes`
                    # Endpoints validation in a loop otherwise.
                    "--endpoint-reconciler-type=none",
                    *self.aggregation_flags(),
                ],
                self.https_probe(PORTS.apiserver, "/readyz", authenticated=True),
            ),
            ComponentSpec(
                "kube-controller-manager",
                [
                    str(k8s / "kube-controller-manager"),
                    f"--kubeconfig={self.kubeconfig_for('kube-controller-manager')}",
                    f"--authentication-kubeconfig={self.kubeconfig_for('kube-controller-manager')}",
                    f"--authorization-kubeconfig={self.kubeconfig_for('kube-controller-manager')}",
                    "--leader-elect=false",
                    f"--bind-address={address}",
                    f"--secure-port={PORTS.controller_manager}",
                    *serving,
                    "--controllers=*",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    # Each controller acts as its own service account, as bootstrap RBAC expects.
                    "--use-service-account-credentials=true",
                ],
                self.https_probe(PORTS.controller_manager, "/healthz", authenticated=False),
            ),
            ComponentSpec(
                "kube-scheduler",
                [
                    str(k8s / "kube-scheduler"),
                    f"--config={self.config_dir / 'kube-scheduler.yaml'}",
                    f"--authentication-kubeconfig={self.kubeconfig_for('kube-scheduler')}",
                    f"--authorization-kubeconfig={self.kubeconfig_for('kube-scheduler')}",
                    f"--bind-address={address}",
                    f"--secure-port={PORTS.scheduler}",
                    *serving,
                ],
                self.https_probe(PORTS.scheduler, "/healthz", authenticated=False),
            ),
        ]

    def components(self) -> list[ComponentSpec]:
        return self.core_components() + addons.components(self)

    # -- processes ---------------------------------------------------------------------

    def record_path(self, component: str) -> Path:
        return self.run_dir / f"{component}.json"

    def _spawn(self, spec: ComponentSpec) -> None:
        if process.running(self.record_path(spec.name)):
            return
        process.spawn(
            self.record_path(spec.name),
            self.log_dir / f"{spec.name}.log",
            self.namespace.exec_args(spec.argv),
            spec.env,
        )

    def _check(self, spec: ComponentSpec) -> tuple[bool, str]:
        """Probe `spec`; refused unless this thread runs inside the fleet's namespace."""
        self.namespace.require_inside(f"the health probe of {self.name}/{spec.name}")
        return spec.probe.check()

    def _wait(self, specs: Sequence[ComponentSpec], timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(specs)
        while pending:
            for spec in list(pending):
                if process.running(self.record_path(spec.name)) is None:
                    log = self.log_dir / f"{spec.name}.log"
                    raise RuntimeError(f"{self.name}: {spec.name} exited; see {log}:\n{_tail(log)}")
                healthy, detail = self._check(spec)
                if healthy:
                    pending.remove(spec)
                elif time.monotonic() > deadline:
                    log = self.log_dir / f"{spec.name}.log"
                    raise TimeoutError(
                        f"{self.name}: {spec.name} not healthy after {timeout_s:.0f}s "
                        f"({spec.probe.url}: {detail}); see {log}"
                    )
            if pending:
                time.sleep(0.25)

    def start(self) -> None:
        """Start whatever is not running, install the add-ons, wait until all is healthy."""
        began = time.monotonic()
        self.ensure_files()
        core = self.core_components()
        etcd, apiserver, *controllers = core
        self._spawn(etcd)
        self._spawn(apiserver)
        self._wait([etcd, apiserver])
        for spec in controllers:
            self._spawn(spec)
        addons.install(self)
        extra = addons.components(self)
        for spec in extra:
            self._spawn(spec)
        self._wait(controllers + extra)
        addons.after_ready(self)
        self.say(f"{self.name}: ready in {time.monotonic() - began:.1f}s at {self.plan.server}")

    def stop(self, *, abrupt: bool = False, grace_s: float = 10.0) -> list[str]:
        """Stop every component, last started first; the names of those that ran."""
        stopped = []
        for spec in reversed(self.components()):
            if process.stop(self.record_path(spec.name), grace_s=grace_s, abrupt=abrupt):
                stopped.append(spec.name)
        return stopped

    def remove_files(self) -> None:
        for path in self.owned_paths():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def status(self) -> list[ComponentStatus]:
        out = []
        for spec in self.components():
            record = process.running(self.record_path(spec.name))
            if record is None:
                out.append(ComponentStatus(self.name, spec.name, None, False, "not running"))
                continue
            healthy, detail = self._check(spec)
            out.append(ComponentStatus(self.name, spec.name, record.pid, healthy, detail))
        return out

    # -- clients -----------------------------------------------------------------------

    def client_args(self, command: Sequence[str]) -> list[str]:
        """`command` as it must run: inside the namespace, whichever thread asks."""
        if self.namespace.is_current():
            return list(command)
        return self.namespace.exec_args(command)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl as this cluster's admin, inside the namespace."""
        command = [str(self.binaries.kubectl), f"--kubeconfig={self.kubeconfig_path}", *args]
        return run_kubectl(self.client_args(command), self.name, stdin, check, timeout)


def run_kubectl(
    command: Sequence[str], cluster: str, stdin: str | None, check: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a kubectl command line; on failure with `check`, raise with the cluster and stderr."""
    result = subprocess.run(
        list(command), input=stdin, capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        shown = " ".join(a for a in command if not a.startswith("--kubeconfig="))
        raise RuntimeError(f"{cluster}: {shown} failed: {result.stderr.strip()}")
    return result


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
