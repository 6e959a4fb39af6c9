"""The control plane's services on the local fleet: their identities, RBAC and CRDs.

In production each service runs under its own ServiceAccount, bound by the
Helm chart to the rules in `charts/modelplane/files/rbac/<service>.yaml`. On
the local fleet each service gets a client-certificate user
`modelplane:<service>` on the control cluster (its kubeconfig is
`config/control/<service>.kubeconfig`), bound to the same files' ClusterRole
(cluster-wide) and Roles: in `modelplane-system`, or in the namespace a Role's file
names (gateway-config's API keys: `modelplane-api-keys`). `install` also applies the
repository's CRDs and those namespaces, as the chart would.

For gRPC between services (and from the `modelplane` CLI), `write_tls` issues
from the control cluster's CA one certificate per service (server and client,
SAN the control address) and one for the CLI (client only), each in
`config/control/tls/<name>/` as `tls.crt`, `tls.key` and `ca.crt`: servers
require client certificates from that CA (mutual TLS).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from modelplane_localfleet.pki import CertificateAuthority

ROOT = Path(__file__).resolve().parents[3]
RBAC_DIR = ROOT / "charts" / "modelplane" / "files" / "rbac"
CRD_DIR = ROOT / "crds"
NAMESPACE = "modelplane-system"
SERVICES = (
    "cluster-provisioner",
    "fleet-scheduler",
    "endpoint-manager",
    "gateway-config",
    "cache-hydrator",
    "activator",
)
API = "rbac.authorization.k8s.io"


CLI_IDENTITY = "modelplane-cli"


def tls_dir(config_dir: Path, name: str) -> Path:
    return config_dir / "tls" / name


def write_tls(
    ca: CertificateAuthority, ca_pem: bytes, config_dir: Path, address: str, now: datetime.datetime
) -> None:
    """Certificates for every service (server and client) and the CLI (client), once."""
    for name in (*SERVICES, CLI_IDENTITY):
        directory = tls_dir(config_dir, name)
        if (directory / "tls.key").exists():
            continue
        service = name != CLI_IDENTITY
        pair = ca.issue(
            user(name), now, ips=[address] if service else [], server=service, client=True
        )
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_bytes(ca_pem)
        (directory / "tls.crt").write_bytes(pair.cert_pem)
        key = directory / "tls.key"
        key.touch(mode=0o600)
        key.write_bytes(pair.key_pem)


def user(service: str) -> str:
    return f"modelplane:{service}"


def users() -> dict[str, str]:
    return {service: user(service) for service in SERVICES}


def _binding(kind: str, role: dict[str, Any], service: str) -> dict[str, Any]:
    """`role` bound to the service's user (a RoleBinding in the Role's namespace)."""
    name = role["metadata"]["name"]
    metadata: dict[str, Any] = {"name": name}
    if kind == "RoleBinding":
        metadata["namespace"] = role["metadata"]["namespace"]
    return {
        "apiVersion": f"{API}/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": API, "kind": role["kind"], "name": name},
        "subjects": [{"apiGroup": API, "kind": "User", "name": user(service)}],
    }


HARNESS_ROLE_PREFIX = "localfleet:"


def rbac_objects() -> list[dict[str, Any]]:
    """Every service's roles from the chart's files, each bound to the service's user,
    after the namespaces the Roles live in.

    A Role lives in `NAMESPACE` unless its file names a namespace. The roles are named
    `localfleet:<service>`, not the files' `modelplane:<service>`, so a chart release named
    `modelplane` (whose roles are `<release>:<service>`) installs beside them on the same
    control cluster."""
    namespaces = [NAMESPACE]
    out: list[dict[str, Any]] = []
    for service in SERVICES:
        for role in yaml.safe_load_all((RBAC_DIR / f"{service}.yaml").read_text()):
            role["metadata"]["name"] = HARNESS_ROLE_PREFIX + service
            if role["kind"] == "Role":
                namespace = role["metadata"].setdefault("namespace", NAMESPACE)
                namespaces += [] if namespace in namespaces else [namespace]
                out += [role, _binding("RoleBinding", role, service)]
            else:
                out += [role, _binding("ClusterRoleBinding", role, service)]
    return [
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces),
        *out,
    ]


def inference_gateway(port: int) -> list[dict[str, Any]]:
    """The serving stack's Gateway on an inference cluster (cluster-provisioner reads its
    address; endpoint-manager attaches replicas' HTTPRoutes to it)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "modelplane-inference", "namespace": NAMESPACE},
            "spec": {
                "gatewayClassName": "traefik",
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "port": port,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
    ]


# Where each service listens on the control cluster's address when the fleet runs the
# services itself (`up --services`): its status endpoints and, for two, its gRPC API.
STATUS_PORTS = {
    "cluster-provisioner": 9090,
    "fleet-scheduler": 9091,
    "endpoint-manager": 9092,
    "gateway-config": 9093,
    "cache-hydrator": 9094,
    "activator": 9096,
}
ACTIVATOR_PORT = 8090
"""Where the activator takes the requests of ModelServices at zero (gateway-config's
`--activator-url`)."""
GRPC_PORTS = {"cluster-provisioner": 50071, "fleet-scheduler": 50061}
SCALER_PORT = 50081
"""endpoint-manager's KEDA external scaler and Activation API (the activator reports there)."""
MODULES = {service: service.replace("-", "_") for service in SERVICES}


def enabled_marker(config_dir: Path) -> Path:
    """Present when the fleet runs the control plane's services as control components."""
    return config_dir / "services.enabled"


def service_argv(service: str, python: str, config_dir: Path, address: str) -> list[str]:
    """The command line of `service` on the control cluster: its own kubeconfig and
    identity, status endpoints on the control address, mutual TLS for gRPC."""
    tls = tls_dir(config_dir, service)
    tls_flags = [
        f"--tls-cert={tls / 'tls.crt'}",
        f"--tls-key={tls / 'tls.key'}",
        f"--tls-ca={tls / 'ca.crt'}",
    ]
    argv = [
        python, "-m", MODULES[service],
        f"--kubeconfig={config_dir / f'{service}.kubeconfig'}",
        f"--status-address={address}:{STATUS_PORTS[service]}",
    ]  # fmt: skip
    if service in GRPC_PORTS:
        argv += [f"--listen={address}:{GRPC_PORTS[service]}", *tls_flags]
    elif service in ("endpoint-manager", "cache-hydrator"):
        argv += [f"--fleet={address}:{GRPC_PORTS['cluster-provisioner']}", *tls_flags]
    elif service == "gateway-config":
        argv.append(f"--activator-url=http://{address}:{ACTIVATOR_PORT}")
    elif service == "activator":
        argv += [f"--listen={address}:{ACTIVATOR_PORT}", f"--scaler={address}:{SCALER_PORT}"]
        argv += tls_flags
    if service == "endpoint-manager":
        argv.append(f"--scaler-address={address}:{SCALER_PORT}")
    return argv
