"""The chart's share of the front door's API keys: gateway-config's key server port, its
Service port, the URL Traefik is given, and reading Secrets in the release namespace only."""

from __future__ import annotations

from typing import Any

from tests.chart.helm import NAMESPACE, RELEASE, by_kind

SERVICE = "gateway-config"


def test_the_key_server_listens_on_its_port_and_traefik_is_given_the_service(
    rendered: list[dict[str, Any]],
) -> None:
    (container,) = by_kind(rendered, "Deployment")[SERVICE]["spec"]["template"]["spec"][
        "containers"
    ]
    assert "--api-key-address=$(POD_IP):9095" in container["args"]
    assert f"--api-key-url=http://{SERVICE}.{NAMESPACE}.svc:9095" in container["args"]
    assert {"name": "api-keys", "containerPort": 9095, "protocol": "TCP"} in container["ports"]
    ports = by_kind(rendered, "Service")[SERVICE]["spec"]["ports"]
    assert {"name": "api-keys", "port": 9095, "targetPort": "api-keys", "protocol": "TCP"} in ports


def test_secrets_are_read_in_the_release_namespace_only(rendered: list[dict[str, Any]]) -> None:
    name = f"{RELEASE}:{SERVICE}"
    role = by_kind(rendered, "Role")[name]
    assert role["metadata"]["namespace"] == NAMESPACE
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]} in role[
        "rules"
    ]
    cluster_role = by_kind(rendered, "ClusterRole")[name]
    assert not [r for r in cluster_role["rules"] if "secrets" in r["resources"]]
