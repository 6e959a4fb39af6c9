"""Observing one inference cluster: its kubeconfig Secret, then what the cluster carries.

`secret_name` names a cluster's kubeconfig Secret (in the collection
`secrets_path`) and `credentials` turns it (or None when missing) into
`Credentials`, naming what is wrong: no Secret, no such key, not a kubeconfig.
`inspect` connects with that kubeconfig (connections are reused per kubeconfig)
and reads, within a deadline: which of the serving stack's CRDs exist, the
address of the stack's Gateway, and how many Ready nodes each pool
(`modelplane.ai/pool` label) has. Any failure to reach the cluster is an
`Inspection` with `error` set, never an exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections import Counter
from collections.abc import Mapping
from typing import Any

import yaml
from modelplane.kube import TRANSIENT, Kube
from modelplane.naming import POOL_LABEL
from modelplane.wellknown import INFERENCE_GATEWAY_NAME as GATEWAY_NAME
from modelplane.wellknown import INFERENCE_GATEWAY_NAMESPACE as GATEWAY_NAMESPACE

from cluster_provisioner.status import (
    KUBECONFIG_INVALID,
    SECRET_KEY_NOT_FOUND,
    SECRET_NOT_FOUND,
    Credentials,
    Inspection,
)

FIELD_MANAGER = "modelplane-cluster-provisioner"
REQUIRED_CRDS = (
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "leaderworkersets.leaderworkerset.x-k8s.io",
)
INSPECT_TIMEOUT_S = 4.0


def credentials(
    cluster: Mapping[str, Any], secret: Mapping[str, Any] | None, namespace: str
) -> Credentials:
    name = f"InferenceCluster/{cluster['metadata']['name']}"
    ref = cluster["spec"]["cluster"]["existing"]["secretRef"]
    key = ref.get("key", "kubeconfig")
    field = "spec.cluster.existing.secretRef"
    if secret is None:
        return Credentials(
            reason=SECRET_NOT_FOUND,
            message=f"{name} {field}.name: Secret {namespace}/{ref['name']} not found",
        )
    data = secret.get("data") or {}
    if key not in data:
        return Credentials(
            reason=SECRET_KEY_NOT_FOUND,
            message=f"{name} {field}.key: Secret {namespace}/{ref['name']} has no key {key!r}",
        )
    try:
        text = base64.b64decode(data[key]).decode()
        parsed = yaml.safe_load(text)
    except (binascii.Error, UnicodeDecodeError, yaml.YAMLError) as error:
        parsed, problem = None, str(error).splitlines()[0]
    else:
        problem = "" if isinstance(parsed, dict) and parsed.get("clusters") else "no clusters"
    if problem:
        return Credentials(
            reason=KUBECONFIG_INVALID,
            message=(
                f"{name} {field}: key {key!r} of Secret {namespace}/{ref['name']} "
                f"is not a kubeconfig ({problem})"
            ),
        )
    return Credentials(kubeconfig=text)


def secrets_path(namespace: str) -> str:
    """The collection of the Secrets in `namespace` (where kubeconfig Secrets live)."""
    return f"/api/v1/namespaces/{namespace}/secrets"


def secret_name(cluster: Mapping[str, Any]) -> str | None:
    """The name of an Existing cluster's kubeconfig Secret; None for a cluster of another
    source, which has none."""
    existing = cluster["spec"]["cluster"].get("existing")
    if cluster["spec"]["cluster"]["source"] != "Existing" or not existing:
        return None
    return str(existing["secretRef"]["name"])


def _ready(node: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


async def _read(kube: Kube) -> Inspection:
    crds = await kube.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    names = {c["metadata"]["name"] for c in (crds or {}).get("items", [])}
    missing = tuple(c for c in REQUIRED_CRDS if c not in names)
    address, problem = None, ""
    if "gateways.gateway.networking.k8s.io" in names:
        gateway = await kube.get(
            f"/apis/gateway.networking.k8s.io/v1/namespaces/{GATEWAY_NAMESPACE}"
            f"/gateways/{GATEWAY_NAME}"
        )
        if gateway is None:
            problem = f"Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} not found"
        else:
            addresses = (gateway.get("status") or {}).get("addresses") or []
            address = addresses[0]["value"] if addresses else None
            problem = (
                "" if address else f"Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} has no address"
            )
    nodes = await kube.get("/api/v1/nodes", {"labelSelector": POOL_LABEL})
    ready = Counter(
        n["metadata"]["labels"][POOL_LABEL] for n in (nodes or {}).get("items", []) if _ready(n)
    )
    return Inspection("", missing, address, problem, dict(ready))


async def inspect(kubeconfig: str) -> Inspection:
    try:
        parsed = yaml.safe_load(kubeconfig)
        kube = await Kube.connect(parsed, FIELD_MANAGER)
        return await asyncio.wait_for(_read(kube), INSPECT_TIMEOUT_S)
    except TimeoutError:
        return Inspection(error=f"no answer within {INSPECT_TIMEOUT_S:g}s")
    except (*TRANSIENT, ValueError, KeyError) as error:
        return Inspection(error=str(error).splitlines()[0] if str(error) else type(error).__name__)
