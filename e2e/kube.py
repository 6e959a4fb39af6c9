"""Small helpers e2e tests share: apply objects, read them back, wait for a condition
(`wait_for`, the local fleet's `poll`)."""

from __future__ import annotations

import json
from typing import Any

from modelplane_localfleet.polling import poll

from e2e.backends import ClusterHandle

Json = dict[str, Any]
wait_for = poll


def apply(cluster: ClusterHandle, *objects: Json) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=e2e", "-f", "-",
        stdin="\n".join(json.dumps(o) for o in objects),
    )  # fmt: skip


def get(cluster: ClusterHandle, *args: str) -> Json:
    """`kubectl get ARGS -o json`, parsed."""
    data: Json = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    return data


def items(cluster: ClusterHandle, *args: str) -> list[Json]:
    found: list[Json] = get(cluster, *args)["items"]
    return found


def condition(obj: Json, kind: str) -> Json:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry["type"] == kind:
            return dict(entry)
    return {}


def is_ready(pod: Json) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def gateway(name: str, namespace: str, port: int) -> Json:
    """A Gateway of the `traefik` class with one HTTP listener on `port`."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": "traefik",
            "listeners": [{"name": "http", "protocol": "HTTP", "port": port}],
        },
    }


def prefix_route(name: str, namespace: str, parent: str, prefix: str, service: str) -> Json:
    """An HTTPRoute sending `prefix`... to `service`:8000 with the prefix rewritten to `/`."""
    rewrite = {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": parent}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
                    "filters": [{"type": "URLRewrite", "urlRewrite": {"path": rewrite}}],
                    "backendRefs": [{"name": service, "port": 8000}],
                }
            ],
        },
    }
