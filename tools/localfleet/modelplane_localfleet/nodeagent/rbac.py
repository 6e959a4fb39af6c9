"""What the node agent's client-certificate user may do on its cluster (RBAC objects).

Kubelet's and a DRA driver's rights, no more: its nodes, their status and
leases; pods it runs (read, status, delete to finish deletions) and their events;
the ConfigMaps, Secrets and PersistentVolumeClaims (and their volumes) pods
refer to and Services (read); tokens for the
pods' service accounts (`serviceaccounts/token` create); DeviceClasses and
ResourceSlices it publishes, and ResourceClaims it reads.
"""

from __future__ import annotations

from typing import Any

from modelplane_localfleet.rbac import bind_to_user

ROLE_NAME = "modelplane-localfleet:node-agent"
USER = "modelplane:node-agent"


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def rbac_objects(user: str = USER) -> list[dict[str, Any]]:
    write = ["get", "list", "watch", "create", "update", "patch", "delete"]
    read = ["get", "list", "watch"]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": ROLE_NAME},
        "rules": [
            _rule("", ["nodes"], write),
            _rule("", ["nodes/status"], ["get", "patch", "update"]),
            _rule("coordination.k8s.io", ["leases"], write),
            _rule("", ["pods"], [*read, "delete"]),
            _rule("", ["pods/status"], ["get", "patch", "update"]),
            _rule("", ["events"], ["create", "patch", "update"]),
            _rule("", ["configmaps", "secrets", "services"], read),
            _rule("", ["persistentvolumeclaims", "persistentvolumes"], read),
            _rule("", ["serviceaccounts/token"], ["create"]),
            _rule("resource.k8s.io", ["deviceclasses", "resourceslices"], write),
            _rule("resource.k8s.io", ["resourceclaims"], read),
        ],
    }
    return bind_to_user(role, user)
