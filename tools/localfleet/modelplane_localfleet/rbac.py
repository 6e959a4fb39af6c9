"""RBAC objects the harness writes: a ClusterRole bound to one client-certificate user."""

from __future__ import annotations

from typing import Any

API = "rbac.authorization.k8s.io"


def bind_to_user(role: dict[str, Any], user: str) -> list[dict[str, Any]]:
    """`role` (a ClusterRole) and a ClusterRoleBinding of the same name granting it to `user`."""
    name = role["metadata"]["name"]
    binding = {
        "apiVersion": f"{API}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": API, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": API, "kind": "User", "name": user}],
    }
    return [role, binding]
