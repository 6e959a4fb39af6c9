"""The control plane's services on the local fleet: identities, RBAC and command lines."""

from __future__ import annotations

from pathlib import Path

from modelplane_localfleet import services

CONFIG = Path("/state/config/control")


def test_every_service_has_its_rbac_bound_to_its_own_user() -> None:
    objects = services.rbac_objects()
    bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    for service in services.SERVICES:
        mine = [b for b in bindings if b["subjects"][0]["name"] == f"modelplane:{service}"]
        assert {b["kind"] for b in mine} == {"ClusterRoleBinding", "RoleBinding"}, service
        assert all(b["roleRef"]["name"] == f"localfleet:{service}" for b in mine)


KUBECONFIG_NAMESPACE = "modelplane-system"
KEY_NAMESPACE = "modelplane-api-keys"
CLUSTER_WIDE = "*"


def secret_verbs() -> dict[tuple[str, str], set[str]]:
    """{(user, namespace or CLUSTER_WIDE): verbs on Secrets}, following every binding."""
    objects = services.rbac_objects()
    roles = {
        (o["kind"], o["metadata"].get("namespace", CLUSTER_WIDE), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("ClusterRole", "Role")
    }
    verbs: dict[tuple[str, str], set[str]] = {}
    for binding in (o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        scope = binding["metadata"].get("namespace", CLUSTER_WIDE)
        ref = binding["roleRef"]
        role = roles[
            (ref["kind"], CLUSTER_WIDE if ref["kind"] == "ClusterRole" else scope, ref["name"])
        ]
        for rule in role["rules"]:
            if "secrets" in rule["resources"]:
                for subject in binding["subjects"]:
                    verbs.setdefault((subject["name"], scope), set()).update(rule["verbs"])
    return verbs


def test_only_cluster_provisioner_may_list_secrets_and_cache_hydrator_only_gets_them() -> None:
    """Kubeconfig Secrets are cluster-provisioner's alone: only it may list or watch Secrets
    of their namespace (or cluster-wide); cache-hydrator reads a ModelCache's authSecret by
    name (`get`), so it can never enumerate Secrets it was not pointed at; gateway-config
    lists and watches the API keys in their own namespace, and nowhere else."""
    verbs = secret_verbs()
    enumerate_ = {where for where, v in verbs.items() if v & {"list", "watch"}}
    assert enumerate_ == {
        ("modelplane:cluster-provisioner", KUBECONFIG_NAMESPACE),
        ("modelplane:gateway-config", KEY_NAMESPACE),
    }
    assert verbs[("modelplane:gateway-config", KEY_NAMESPACE)] == {"get", "list", "watch"}
    assert verbs[("modelplane:cache-hydrator", CLUSTER_WIDE)] == {"get"}
    assert set(verbs) == {
        ("modelplane:cluster-provisioner", KUBECONFIG_NAMESPACE),
        ("modelplane:gateway-config", KEY_NAMESPACE),
        ("modelplane:cache-hydrator", CLUSTER_WIDE),
    }


def test_every_namespace_a_role_lives_in_is_created_before_it() -> None:
    objects = services.rbac_objects()
    created = [i for i, o in enumerate(objects) if o["kind"] == "Namespace"]
    names = {objects[i]["metadata"]["name"] for i in created}
    assert names == {KUBECONFIG_NAMESPACE, KEY_NAMESPACE}
    for i, o in enumerate(objects):
        if o["kind"] in ("Role", "RoleBinding"):
            assert o["metadata"]["namespace"] in names and i > max(created), o["metadata"]


def test_command_lines_use_each_identity_and_wire_endpoint_manager_to_the_fleet_api() -> None:
    argv = {s: services.service_argv(s, "python", CONFIG, "10.240.0.1") for s in services.SERVICES}
    for service, line in argv.items():
        assert line[:3] == ["python", "-m", service.replace("-", "_")]
        assert f"--kubeconfig={CONFIG}/{service}.kubeconfig" in line
        port = services.STATUS_PORTS[service]
        assert f"--status-address=10.240.0.1:{port}" in line
    assert "--listen=10.240.0.1:50071" in argv["cluster-provisioner"]
    assert "--listen=10.240.0.1:50061" in argv["fleet-scheduler"]
    assert "--fleet=10.240.0.1:50071" in argv["endpoint-manager"]
    tls = CONFIG / "tls" / "endpoint-manager"
    assert f"--tls-cert={tls / 'tls.crt'}" in argv["endpoint-manager"]
    assert not any(a.startswith("--tls") for a in argv["gateway-config"])
    assert "--activator-url=http://10.240.0.1:8090" in argv["gateway-config"]
    assert "--listen=10.240.0.1:8090" in argv["activator"]
    # The activator reports held requests to endpoint-manager's scaler, with its own certificate.
    assert "--scaler-address=10.240.0.1:50081" in argv["endpoint-manager"]
    assert "--scaler=10.240.0.1:50081" in argv["activator"]
    assert f"--tls-cert={CONFIG / 'tls' / 'activator' / 'tls.crt'}" in argv["activator"]
    ports = [*services.STATUS_PORTS.values(), *services.GRPC_PORTS.values(), services.SCALER_PORT]
    assert len(set(ports)) == len(ports)
