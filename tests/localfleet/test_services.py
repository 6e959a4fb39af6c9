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


def test_only_cluster_provisioner_may_list_secrets_and_cache_hydrator_only_gets_them() -> None:
    """Kubeconfig Secrets are cluster-provisioner's alone; cache-hydrator reads a ModelCache's
    authSecret by name (`get`), so it can never enumerate Secrets it was not pointed at."""
    verbs: dict[str, set[str]] = {}
    for o in services.rbac_objects():
        if o["kind"] not in ("ClusterRole", "Role"):
            continue
        for rule in o.get("rules", []):
            if "secrets" in rule.get("resources", []):
                verbs.setdefault(o["metadata"]["name"], set()).update(rule["verbs"])
    assert {name for name, v in verbs.items() if v & {"list", "watch"}} == {
        "localfleet:cluster-provisioner"
    }
    assert verbs["localfleet:cache-hydrator"] == {"get"}
    assert set(verbs) == {"localfleet:cluster-provisioner", "localfleet:cache-hydrator"}


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
