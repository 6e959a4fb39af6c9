"""Observing one inference cluster: its kubeconfig Secret, then what the cluster carries.

`secret_name` names a cluster's kubeconfig Secret (in the collection
`secrets_path`) and `credentials` turns it (or None when missing) into
`Credentials`, naming what is wrong: no Secret, no such key, not a kubeconfig.
`remote_paths` are the collections watched on the cluster itself (by
`cluster_provisioner.remote`): its pool nodes (`modelplane.ai/pool` label),
each of the serving stack's CRDs, the stack's Gateway and the scheduler
extender's Lease, each selected by name. `inspection` (pure) reads the
`Inspection` off those cached objects: which CRDs exist, the Gateway's address,
how many Ready nodes each pool has, the extender's Lease, or, when the cluster
cannot be reached, why.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from modelplane.kube import Json
from modelplane.naming import POOL_LABEL
from modelplane.wellknown import INFERENCE_GATEWAY_NAME as GATEWAY_NAME
from modelplane.wellknown import INFERENCE_GATEWAY_NAMESPACE as GATEWAY_NAMESPACE

from cluster_provisioner.extension import LEASES
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
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
GATEWAYS = (
    f"/apis/gateway.networking.k8s.io/v1/namespaces/{GATEWAY_NAMESPACE}/gateways"
    f"?fieldSelector=metadata.name={GATEWAY_NAME}"
)
NODES = f"/api/v1/nodes?labelSelector={POOL_LABEL}"


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


def crd_path(name: str) -> str:
    return f"{CRDS}?fieldSelector=metadata.name={name}"


def remote_paths() -> list[str]:
    """The collections watched on an inference cluster, nodes first (the idle probe lists
    one of them)."""
    return [NODES, *(crd_path(name) for name in REQUIRED_CRDS), GATEWAYS, LEASES]


def inspection(items: Callable[[str], list[Json]], failure: str) -> Inspection:
    """What the cluster carries, from the cached objects of `remote_paths` (`items(path)`),
    or why it cannot be read (`failure`, when not empty)."""
    if failure:
        return Inspection(error=failure)
    missing = tuple(name for name in REQUIRED_CRDS if not items(crd_path(name)))
    address, problem = None, ""
    if "gateways.gateway.networking.k8s.io" not in missing:
        gateway = next(iter(items(GATEWAYS)), None)
        if gateway is None:
            problem = f"Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} not found"
        else:
            addresses = (gateway.get("status") or {}).get("addresses") or []
            address = addresses[0]["value"] if addresses else None
            problem = (
                "" if address else f"Gateway {GATEWAY_NAMESPACE}/{GATEWAY_NAME} has no address"
            )
    ready = Counter(n["metadata"]["labels"][POOL_LABEL] for n in items(NODES) if _ready(n))
    lease = next(iter(items(LEASES)), None)
    return Inspection("", missing, address, problem, dict(ready), lease)
