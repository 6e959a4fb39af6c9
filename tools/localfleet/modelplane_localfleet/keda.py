"""KEDA on the control cluster: its operator, metrics adapter and admission webhooks as processes.

Upstream runs KEDA as three pods in namespace `keda` that share the service
account `keda-operator` and one certificate Secret (`kedaorg-certs`). Here they
are processes of the harness on the control cluster's address, and:

- they act as one client-certificate user (`USER`), bound to upstream's own RBAC
  (`config/rbac` and `config/metrics-server` of the module) in place of the
  service account; `POD_NAMESPACE` and `KEDA_CLUSTER_OBJECT_NAMESPACE` say `keda`;
- one certificate from the cluster CA (`write_certs`: the three Services' DNS
  names and the control address, server and client use) serves and authenticates
  all three like `kedaorg-certs` does: the operator's gRPC metrics service, the
  adapter's client of it, the adapter's HTTPS and the webhooks. The operator's own
  certificate rotation (and its patching of the APIService and webhooks) is off;
- the metrics adapter is an aggregated API server: the APIService
  `v1beta1.external.metrics.k8s.io` names the Service `keda/keda-metrics-apiserver`,
  selectorless, whose EndpointSlice points at the adapter (kube-apiserver runs with
  `--enable-aggregator-routing`, see `Cluster.aggregation_flags`), with the
  cluster CA as `caBundle`; the adapter trusts kube-apiserver's front-proxy client
  certificate through `kube-system/extension-apiserver-authentication`;
- the `keda-admission` ValidatingWebhookConfiguration is upstream's, each webhook
  called at `clientConfig.url` on the webhook process with the cluster CA's bundle.

KEDA is opt-in (`up --keda`, which leaves `enabled_marker`): only then is it built
(a cold build takes long) and run. Everything here is pure except `write_certs`.
"""

from __future__ import annotations

import base64
import copy
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelplane_localfleet.pki import CertificateAuthority
from modelplane_localfleet.servicenet import fixed_endpoints

NAMESPACE = "keda"
USER = "modelplane:keda"
IDENTITY = "keda"  # the kubeconfig the three processes share (`Cluster.kubeconfig_for`)
SERVICE_ACCOUNT = "keda-operator"  # upstream's, replaced by USER in its bindings
OPERATOR, ADAPTER, WEBHOOKS = "keda-operator", "keda-metrics-apiserver", "keda-admission-webhooks"
APISERVICE = "v1beta1.external.metrics.k8s.io"
WEBHOOK_CONFIGURATION = "keda-admission"
SERVICE_PORT_NAME = "https"


@dataclass(frozen=True, slots=True)
class Ports:
    """KEDA's ports on the control address. The adapter's metrics and the webhook server
    bind every address (neither takes a host), so those two numbers must be free fleet-wide."""

    operator_metrics: int = 9180
    operator_health: int = 9181
    operator_grpc: int = 9666
    adapter_https: int = 6444
    adapter_metrics: int = 9182  # all addresses
    webhooks: int = 9445  # all addresses (LWS has 9443 on inference clusters)
    webhooks_health: int = 9183
    webhooks_metrics: int = 9184


PORTS = Ports()


def enabled_marker(config_dir: Path) -> Path:
    """Present when the fleet runs KEDA on its control cluster."""
    return config_dir / "keda.enabled"


def cert_dir(config_dir: Path) -> Path:
    return config_dir / "keda-certs"


def dns_names() -> list[str]:
    """Every name a client may check the shared certificate against."""
    names = []
    for service in (OPERATOR, ADAPTER, WEBHOOKS):
        names += [f"{service}.{NAMESPACE}.svc", f"{service}.{NAMESPACE}.svc.cluster.local"]
    return names


def write_certs(
    ca: CertificateAuthority, ca_pem: bytes, directory: Path, address: str, now: datetime.datetime
) -> None:
    """`tls.crt`, `tls.key` and `ca.crt` in `directory`, as KEDA reads its cert dir."""
    pair = ca.issue("keda", now, server=True, client=True, ips=[address], dns_names=dns_names())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca_pem)
    (directory / "tls.crt").write_bytes(pair.cert_pem)
    key = directory / "tls.key"
    key.touch(mode=0o600)
    key.write_bytes(pair.key_pem)


def environment(kubeconfig: Path) -> dict[str, str]:
    """What the three processes read from their pod's environment upstream."""
    return {
        "KUBECONFIG": str(kubeconfig),
        "POD_NAMESPACE": NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
        "WATCH_NAMESPACE": "",
    }


def operator_command(entry: Path, address: str, certs: Path) -> list[str]:
    return [
        str(entry / "operator"),
        "--leader-elect=false",
        "--enable-cert-rotation=false",
        f"--cert-dir={certs}",
        f"--metrics-bind-address={address}:{PORTS.operator_metrics}",
        f"--health-probe-bind-address={address}:{PORTS.operator_health}",
        f"--metrics-service-bind-address={address}:{PORTS.operator_grpc}",
        "--zap-encoder=console",
    ]


def adapter_command(entry: Path, address: str, certs: Path, kubeconfig: Path) -> list[str]:
    return [
        str(entry / "adapter"),
        f"--bind-address={address}",
        f"--secure-port={PORTS.adapter_https}",
        f"--cert-dir={certs}",
        f"--tls-cert-file={certs / 'tls.crt'}",
        f"--tls-private-key-file={certs / 'tls.key'}",
        f"--client-ca-file={certs / 'ca.crt'}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--port={PORTS.adapter_metrics}",
        f"--metrics-service-address={address}:{PORTS.operator_grpc}",
        "--zap-log-level=info",
    ]


def webhooks_command(entry: Path, address: str, certs: Path) -> list[str]:
    return [
        str(entry / "webhooks"),
        f"--cert-dir={certs}",
        f"--port={PORTS.webhooks}",
        f"--health-probe-bind-address={address}:{PORTS.webhooks_health}",
        f"--metrics-bind-address={address}:{PORTS.webhooks_metrics}",
        "--zap-encoder=console",
    ]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _for_user(document: dict[str, Any]) -> dict[str, Any]:
    """Upstream's role or binding in namespace `keda` where it has none, its
    `keda-operator` service account subjects replaced by `USER`."""
    out = copy.deepcopy(document)
    if out["kind"] in ("Role", "RoleBinding"):
        out["metadata"].setdefault("namespace", NAMESPACE)
    if "subjects" in out:
        out["subjects"] = [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}
            if subject.get("kind") == "ServiceAccount" and subject.get("name") == SERVICE_ACCOUNT
            else subject
            for subject in out["subjects"]
        ]
    return out


def rbac_objects(entry: Path) -> list[dict[str, Any]]:
    """Upstream's roles and bindings (the operator's, the metrics server's: auth delegation,
    the authentication reader, the HPA controller's access to external metrics) for `USER`,
    and its `keda:edit`/`keda:view` roles that aggregate into `admin`, `edit` and `view`."""
    files = [
        entry / "rbac" / "role.yaml",
        entry / "rbac" / "role_binding.yaml",
        entry / "rbac" / "aggregate_cluster_roles.yaml",
        entry / "metrics-server" / "role.yaml",
        entry / "metrics-server" / "role_binding.yaml",
    ]
    return [_for_user(d) for path in files for d in _documents(path)]


def _service(name: str, port: int) -> dict[str, Any]:
    """A selectorless Service `name` on port 443 whose endpoint is a harness process."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "ports": [
                {"name": SERVICE_PORT_NAME, "port": 443, "protocol": "TCP", "targetPort": port}
            ]
        },
    }


def registrations(entry: Path, address: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """The namespace, the adapter's Service and endpoints, its APIService, and the
    admission webhooks pointed at the webhook process."""
    bundle = base64.b64encode(ca_pem).decode()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    objects: list[dict[str, Any]] = [namespace, _service(ADAPTER, PORTS.adapter_https)]
    objects += fixed_endpoints(NAMESPACE, ADAPTER, address, SERVICE_PORT_NAME, PORTS.adapter_https)
    (apiservice,) = _documents(entry / "metrics-server" / "api_service.yaml")
    apiservice["spec"]["service"] = {"name": ADAPTER, "namespace": NAMESPACE, "port": 443}
    apiservice["spec"]["caBundle"] = bundle
    apiservice["spec"].pop("insecureSkipTLSVerify", None)
    objects.append(apiservice)
    objects += webhook_configuration(entry, f"https://{address}:{PORTS.webhooks}", bundle)
    return objects


def webhook_configuration(entry: Path, base_url: str, bundle: str) -> list[dict[str, Any]]:
    """Upstream's `keda-admission`, each webhook called at `base_url` + its service path."""
    out = _documents(entry / "admission" / "validation_webhooks.yaml")
    for document in out:
        for webhook in document.get("webhooks", []):
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": base_url + path, "caBundle": bundle}
    return out
