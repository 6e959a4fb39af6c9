"""The LeaderWorkerSet controller (`lws-manager`) run outside a pod, with its webhooks.

Upstream deploys LWS as a pod that makes its own webhook certificate and is
reached through a Service. Here it is a process on the cluster's address, so:

- internal certificate management is off and the webhook serves a certificate
  the cluster CA issued for that address (`write_serving_cert`);
- the webhook configurations from the module's `config/webhook/manifests.yaml`
  get upstream's kustomize patches (the pod webhooks only see pods that carry
  the `leaderworkerset.sigs.k8s.io/name` label, so ordinary pods never wait on
  LWS) and call `clientConfig.url` with the CA bundle instead of a Service;
- leader election is off (one replica), health and metrics bind the cluster's
  address, and the controller authenticates with its own client certificate,
  bound to upstream's `manager-role` (`config/rbac/role.yaml`).

All functions are pure except `write_serving_cert`.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import yaml

from modelplane_localfleet.pki import CertificateAuthority
from modelplane_localfleet.rbac import bind_to_user

ROLE_NAME = "modelplane-localfleet:lws-manager"
CONFIG_API = "config.lws.x-k8s.io/v1alpha1"
POD_LABEL = "leaderworkerset.sigs.k8s.io/name"


def manager_config(
    *, address: str, webhook_port: int, health_port: int, metrics_port: int, cert_dir: Path
) -> dict[str, Any]:
    """lws-manager's Configuration for one process on `address`."""
    return {
        "apiVersion": CONFIG_API,
        "kind": "Configuration",
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "webhook": {"host": address, "port": webhook_port, "certDir": str(cert_dir)},
        "health": {"healthProbeBindAddress": f"{address}:{health_port}"},
        "metrics": {"bindAddress": f"{address}:{metrics_port}"},
    }


def write_serving_cert(
    ca: CertificateAuthority, cert_dir: Path, address: str, now: datetime.datetime
) -> None:
    """The webhook's tls.crt and tls.key, for `address`, signed by the cluster CA."""
    pair = ca.issue("lws-webhook", now, server=True, ips=[address])
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / "tls.crt").write_bytes(pair.cert_pem)
    key = cert_dir / "tls.key"
    key.write_bytes(pair.key_pem)
    key.chmod(0o600)


def _apply_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    """Apply kustomize JSON-patch operations; only `replace` of `/webhooks/N` is used upstream."""
    for operation in operations:
        parts = operation["path"].strip("/").split("/")
        if operation["op"] != "replace" or len(parts) != 2 or parts[0] != "webhooks":
            raise ValueError(f"unsupported webhook patch {operation['op']} {operation['path']}")
        document["webhooks"][int(parts[1])] = copy.deepcopy(operation["value"])


def webhook_configurations(
    webhook_dir: Path, *, base_url: str, ca_pem: bytes
) -> list[dict[str, Any]]:
    """The Mutating and Validating configurations, patched and pointed at `base_url`."""
    import base64

    documents = [d for d in yaml.safe_load_all((webhook_dir / "manifests.yaml").read_text()) if d]
    patches = {
        "MutatingWebhookConfiguration": webhook_dir / "mutating-patch.yaml",
        "ValidatingWebhookConfiguration": webhook_dir / "validating-patch.yaml",
    }
    bundle = base64.b64encode(ca_pem).decode()
    out = []
    for document in documents:
        kind = document["kind"]
        patch = patches.get(kind)
        if patch is not None and patch.exists():
            _apply_patch(document, yaml.safe_load(patch.read_text()))
        document["metadata"] = {"name": f"lws-{document['metadata']['name']}"}
        for webhook in document["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": f"{base_url}{path}", "caBundle": bundle}
        out.append(document)
    return out


def manager_command(lws_manager: Path, config_path: Path, kubeconfig: Path) -> list[str]:
    return [str(lws_manager), f"--config={config_path}", f"--kubeconfig={kubeconfig}"]


def readiness_url(address: str, health_port: int) -> str:
    return f"http://{address}:{health_port}/readyz"


def rbac_objects(role_file: Path, user: str) -> list[dict[str, Any]]:
    """Upstream's manager ClusterRole under our name, bound to client-certificate `user`."""
    role = next(d for d in yaml.safe_load_all(role_file.read_text()) if d)
    role = {**role, "metadata": {"name": ROLE_NAME}}
    return bind_to_user(role, user)
