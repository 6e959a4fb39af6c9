"""Kubeconfig files for the local fleet's clusters, with certificates embedded.

One context per file, named like the cluster, so `KUBECONFIG=DIR/kubeconfig/NAME.yaml`
is all a client needs. The content is deterministic for the same inputs.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from modelplane_localfleet.pki import KeyPair


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    cluster: str, server: str, ca_pem: bytes, user: str, client: KeyPair
) -> dict[str, Any]:
    """A kubeconfig for `user` (client certificate auth) on `cluster` at `server` (https URL)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert_pem),
                    "client-key-data": _b64(client.key_pem),
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
