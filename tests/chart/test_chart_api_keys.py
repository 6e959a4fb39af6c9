"""The chart's share of the front door's API keys: gateway-config's key server port, its
Service port, the URL Traefik is given, and reading Secrets in the key namespace only (never
the release namespace, where the clusters' kubeconfig Secrets live)."""

from __future__ import annotations

from typing import Any

from tests.chart.helm import NAMESPACE, RELEASE, by_kind, render, template_error

SERVICE = "gateway-config"
KEY_NAMESPACE = "modelplane-api-keys"
SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}


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


def key_namespace_rbac(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """gateway-config's Roles and RoleBindings by (kind, namespace)."""
    name = f"{RELEASE}:{SERVICE}"
    return {
        (o["kind"], o["metadata"]["namespace"]): o
        for o in objects
        if o["kind"] in ("Role", "RoleBinding") and o["metadata"]["name"] == name
    }


def test_secrets_are_read_in_the_key_namespace_only(rendered: list[dict[str, Any]]) -> None:
    rbac = key_namespace_rbac(rendered)
    assert set(rbac) == {
        (kind, ns) for kind in ("Role", "RoleBinding") for ns in (NAMESPACE, KEY_NAMESPACE)
    }
    assert rbac[("Role", KEY_NAMESPACE)]["rules"] == [SECRETS]
    assert not [r for r in rbac[("Role", NAMESPACE)]["rules"] if "secrets" in r["resources"]]
    binding = rbac[("RoleBinding", KEY_NAMESPACE)]
    assert binding["roleRef"]["name"] == f"{RELEASE}:{SERVICE}"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVICE, "namespace": NAMESPACE}
    ]
    cluster_role = by_kind(rendered, "ClusterRole")[f"{RELEASE}:{SERVICE}"]
    assert not [r for r in cluster_role["rules"] if "secrets" in r["resources"]]
    (container,) = by_kind(rendered, "Deployment")[SERVICE]["spec"]["template"]["spec"][
        "containers"
    ]
    assert f"--api-key-namespace={KEY_NAMESPACE}" in container["args"]


def test_the_key_namespace_is_made_and_kept_on_uninstall(rendered: list[dict[str, Any]]) -> None:
    namespace = by_kind(rendered, "Namespace")[KEY_NAMESPACE]
    assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_the_key_namespace_follows_its_value(helm: Any) -> None:
    objects = render(helm, "services.gateway-config.apiKeyNamespace=team-keys")
    assert ("Role", "team-keys") in key_namespace_rbac(objects)
    assert ("RoleBinding", "team-keys") in key_namespace_rbac(objects)
    assert KEY_NAMESPACE not in by_kind(objects, "Namespace")
    assert "team-keys" in by_kind(objects, "Namespace")


def test_the_release_namespace_is_refused_as_the_key_namespace(helm: Any) -> None:
    error = template_error(helm, f"services.gateway-config.apiKeyNamespace={NAMESPACE}")
    assert "services.gateway-config.apiKeyNamespace" in error and "release namespace" in error


def test_a_key_namespace_that_is_no_namespace_name_is_refused(helm: Any) -> None:
    error = template_error(helm, "services.gateway-config.apiKeyNamespace=Team_Keys")
    assert "apiKeyNamespace" in error
