"""One Kubernetes control plane inside the fleet's network namespace: etcd,
kube-apiserver, kube-controller-manager and kube-scheduler.

The apiserver uses client-certificate auth and RBAC: the admin user is in
`system:masters`, the controller-manager and scheduler authenticate as the
users Kubernetes' bootstrap RBAC already grants (`system:kube-controller-manager`,
`system:kube-scheduler`). It binds an address inside the namespace, so only
clients started inside it can reach it. `start` waits until `/readyz` answers;
`stop` terminates every process. Each component logs to
`STATE/logs/<cluster>/<component>.log`. The node agent and the inference
clusters come with the harness.
"""

from __future__ import annotations

import datetime
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelplane_localfleet.kubeconfig import dump, kubeconfig
from modelplane_localfleet.netns import NetworkNamespace
from modelplane_localfleet.pki import CertificateAuthority, service_account_key

READY_TIMEOUT_S = 90.0


@dataclass
class ControlPlane:
    """A cluster's etcd and apiserver; `address` is an IP inside `namespace`."""

    name: str
    state: Path
    namespace: NetworkNamespace
    kubernetes_bin: Path
    etcd_bin: Path
    address: str = "127.0.0.1"
    apiserver_port: int = 6443
    etcd_port: int = 2379
    _processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def kubeconfig_path(self) -> Path:
        return self.state / "kubeconfig" / f"{self.name}.yaml"

    @property
    def pki_dir(self) -> Path:
        return self.state / "pki" / self.name

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.apiserver_port}"

    def _write_pki(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        pki = self.pki_dir
        pki.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority.create(f"{self.name}-ca", now)
        serving = ca.issue(
            "kube-apiserver",
            now,
            server=True,
            ips=sorted({self.address, "127.0.0.1", "10.96.0.1"}),
            dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
        )
        admin = ca.issue("admin", now, organizations=["system:masters"], client=True)
        signing = service_account_key()
        for user in ("system:kube-controller-manager", "system:kube-scheduler"):
            component = user.removeprefix("system:")
            identity = ca.issue(user, now, client=True)
            (pki / f"{component}.kubeconfig").write_text(
                dump(kubeconfig(self.name, self.server, ca.pair().cert_pem, user, identity))
            )
        files = {
            "ca.crt": ca.pair().cert_pem,
            "ca.key": ca.pair().key_pem,
            "apiserver.crt": serving.cert_pem,
            "apiserver.key": serving.key_pem,
            "sa.pub": signing.cert_pem,
            "sa.key": signing.key_pem,
        }
        for name, data in files.items():
            (pki / name).write_bytes(data)
            (pki / name).chmod(0o600)
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path.write_text(
            dump(kubeconfig(self.name, self.server, ca.pair().cert_pem, "admin", admin))
        )

    def _spawn(self, component: str, command: list[str]) -> None:
        logs = self.state / "logs" / self.name
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{component}.log").open("ab") as log:
            process = subprocess.Popen(
                self.namespace.exec_args(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes.append((component, process))

    def start(self) -> None:
        self._write_pki()
        pki = self.pki_dir
        etcd_url = f"http://{self.address}:{self.etcd_port}"
        self._spawn(
            "etcd",
            [
                str(self.etcd_bin),
                "--name",
                self.name,
                "--data-dir",
                str(self.state / "etcd" / self.name),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                f"http://{self.address}:{self.etcd_port + 1}",
                "--initial-advertise-peer-urls",
                f"http://{self.address}:{self.etcd_port + 1}",
                "--initial-cluster",
                f"{self.name}=http://{self.address}:{self.etcd_port + 1}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.kubernetes_bin / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
            ],
        )
        self.wait_ready()
        self._spawn(
            "kube-controller-manager",
            [
                str(self.kubernetes_bin / "kube-controller-manager"),
                f"--kubeconfig={pki / 'kube-controller-manager.kubeconfig'}",
                "--leader-elect=false",
                "--secure-port=0",
                "--controllers=*",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                # Each controller acts as its own service account, as bootstrap RBAC expects.
                "--use-service-account-credentials=true",
            ],
        )
        scheduler_config = pki / "kube-scheduler.yaml"
        scheduler_config.write_text(
            "apiVersion: kubescheduler.config.k8s.io/v1\n"
            "kind: KubeSchedulerConfiguration\n"
            "clientConnection:\n"
            f"  kubeconfig: {pki / 'kube-scheduler.kubeconfig'}\n"
            "leaderElection:\n"
            "  leaderElect: false\n"
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.kubernetes_bin / "kube-scheduler"),
                f"--config={scheduler_config}",
                "--secure-port=0",
            ],
        )

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster from inside the namespace."""
        command = [
            str(self.kubernetes_bin / "kubectl"),
            f"--kubeconfig={self.kubeconfig_path}",
            *args,
        ]
        result = subprocess.run(
            self.namespace.exec_args(command),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for component, process in self._processes:
                if process.poll() is not None:
                    log = self.state / "logs" / self.name / f"{component}.log"
                    raise RuntimeError(
                        f"{self.name}: {component} exited with {process.returncode}; see {log}"
                    )
            result = self.kubectl("get", "--raw", "/readyz", check=False)
            if result.returncode == 0 and result.stdout.strip() == "ok":
                return
            last = (result.stderr or result.stdout).strip()
            time.sleep(0.5)
        raise TimeoutError(f"{self.name}: apiserver not ready after {timeout_s:.0f}s: {last}")

    def stop(self, grace_s: float = 10.0) -> None:
        for _, process in reversed(self._processes):
            process.terminate()
        for _, process in reversed(self._processes):
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
