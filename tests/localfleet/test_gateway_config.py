"""Traefik as a Gateway API implementation: its command line and its RBAC."""

from __future__ import annotations

from pathlib import Path

from gateway_config.hop import DEFAULT_PORT
from modelplane_localfleet import gateway
from modelplane_localfleet.layout import PORTS


def _flags(argv: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in argv[1:])


def test_listeners_ping_and_status_address_are_on_the_clusters_address() -> None:
    flags = _flags(
        gateway.traefik_command(
            Path("/bin/traefik"), address="10.240.0.1", web_port=80, admin_port=8082
        )
    )
    assert flags["entryPoints.web.address"] == "10.240.0.1:80"
    assert flags["entryPoints.admin.address"] == "10.240.0.1:8082"
    assert flags["ping.entryPoint"] == "admin"
    assert flags["providers.kubernetesGateway"] == "true"
    assert flags["providers.kubernetesGateway.statusAddress.ip"] == "10.240.0.1"
    assert gateway.ping_url("10.240.0.1", 8082) == "http://10.240.0.1:8082/ping"


def test_no_timeout_cuts_a_long_stream_and_traefik_never_phones_home() -> None:
    flags = _flags(gateway.traefik_command(Path("traefik"), address="a", web_port=1, admin_port=2))
    assert flags["entryPoints.web.transport.respondingTimeouts.readTimeout"] == "0s"
    assert flags["entryPoints.web.transport.respondingTimeouts.writeTimeout"] == "0s"
    assert flags["global.checkNewVersion"] == "false"
    assert flags["global.sendAnonymousUsage"] == "false"


def test_idle_backend_connections_close_before_a_uvicorn_backend_closes_them() -> None:
    flags = _flags(gateway.traefik_command(Path("traefik"), address="a", web_port=1, admin_port=2))
    idle = flags["serversTransport.forwardingTimeouts.idleConnTimeout"]
    assert idle.endswith("s") and 0 < int(idle.removesuffix("s")) < 5  # uvicorn keeps 5 s
    # Traefik 3.7.15's fast proxy ends a stream whose backend died as if complete (#13568)
    assert "experimental.fastProxy" not in flags


def test_the_admission_policy_is_applied_after_the_crds_it_checks(tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    for name in (
        "gateway.networking.k8s.io_vap_safeupgrades.yaml",
        "gateway.networking.k8s.io_gateways.yaml",
        "gateway.networking.k8s.io_httproutes.yaml",
    ):
        (crds / name).write_text("{}")
    assert [p.name for p in gateway.crd_files(tmp_path)] == [
        "gateway.networking.k8s.io_gateways.yaml",
        "gateway.networking.k8s.io_httproutes.yaml",
        "gateway.networking.k8s.io_vap_safeupgrades.yaml",
    ]


def test_traefik_may_read_routes_and_backends_and_write_only_status() -> None:
    role, binding = gateway.rbac_objects("modelplane:traefik")
    writes = [r for r in role["rules"] if set(r["verbs"]) - {"get", "list", "watch"}]
    assert {tuple(r["resources"]) for r in writes} == {("*/status",), ("events",)}
    reads = {(g, res) for r in role["rules"] for g in r["apiGroups"] for res in r["resources"]}
    assert ("discovery.k8s.io", "endpointslices") in reads
    assert ("gateway.networking.k8s.io", "*") in reads
    assert binding["subjects"][0]["name"] == "modelplane:traefik"
    assert gateway.gateway_class()["spec"]["controllerName"] == gateway.CONTROLLER_NAME


def test_the_front_door_has_a_hop_entrypoint_where_gateway_config_expects_it() -> None:
    argv = gateway.traefik_command(
        Path("traefik"), address="10.240.0.1", web_port=80, admin_port=8082, hop_port=8001
    )
    flags = _flags(argv)
    assert flags["entryPoints.hop.address"] == "10.240.0.1:8001"
    assert flags["entryPoints.hop.transport.respondingTimeouts.readTimeout"] == "0s"
    assert flags["entryPoints.hop.transport.respondingTimeouts.writeTimeout"] == "0s"
    assert flags["entryPoints.hop.forwardedHeaders.trustedIPs"] == "10.240.0.1"
    assert PORTS.gateway_hop == DEFAULT_PORT == 8001  # gateway-config's --hop-port default
    plain = _flags(gateway.traefik_command(Path("t"), address="a", web_port=1, admin_port=2))
    assert not [f for f in plain if f.startswith("entryPoints.hop.")]


def test_the_front_door_reads_traefik_middlewares_and_every_traefik_kind_exists() -> None:
    front = _flags(
        gateway.traefik_command(Path("t"), address="a", web_port=1, admin_port=2, hop_port=3)
    )
    assert front["providers.kubernetesCRD"] == "true"  # ExtensionRef filters resolve through it
    plain = _flags(gateway.traefik_command(Path("t"), address="a", web_port=1, admin_port=2))
    assert "providers.kubernetesCRD" not in plain
    crds = {c["metadata"]["name"]: c["spec"] for c in gateway.traefik_crds()}
    # the ten kinds Traefik 3.7's CRD provider lists before its caches sync
    assert sorted(crds) == sorted(
        f"{plural}.traefik.io"
        for plural in (
            "ingressroutes", "ingressroutetcps", "ingressrouteudps", "middlewares",
            "middlewaretcps", "serverstransports", "serverstransporttcps", "tlsoptions",
            "tlsstores", "traefikservices",
        )
    )  # fmt: skip
    assert crds["middlewares.traefik.io"]["names"]["kind"] == "Middleware"
    assert {s["scope"] for s in crds.values()} == {"Namespaced"}
    rules = gateway.rbac_objects("traefik")[0]["rules"]
    assert {
        "apiGroups": ["traefik.io"],
        "resources": ["*"],
        "verbs": ["get", "list", "watch"],
    } in rules


def test_the_front_door_has_an_https_entrypoint_on_443_without_timeouts() -> None:
    argv = gateway.traefik_command(
        Path("traefik"), address="10.240.0.1", web_port=80, admin_port=8082, hop_port=8001
    )
    flags = _flags(argv)
    assert flags["entryPoints.websecure.address"] == "10.240.0.1:443"
    assert flags["entryPoints.websecure.transport.respondingTimeouts.writeTimeout"] == "0s"
    # inference clusters' gateways have none
    plain = gateway.traefik_command(Path("traefik"), address="a", web_port=1, admin_port=2)
    assert "entryPoints.websecure.address" not in _flags(plain)
    # benchmarks and tests on loopback choose another port (two at once would collide)
    moved = gateway.traefik_command(
        Path("traefik"), address="127.0.0.1", web_port=1, admin_port=2, hop_port=3, https_port=4
    )
    assert _flags(moved)["entryPoints.websecure.address"] == "127.0.0.1:4"


def test_the_front_door_loads_the_key_plugin_from_its_working_directory(tmp_path: Path) -> None:
    flag = "--experimental.localPlugins.modelplanekeys.moduleName=modelplane.ai/apikeys"
    front = gateway.traefik_command(Path("t"), address="a", web_port=1, admin_port=2, hop_port=3)
    assert flag in front
    assert flag not in gateway.traefik_command(Path("t"), address="a", web_port=1, admin_port=2)
    workdir = tmp_path / "traefik"
    wrapped = gateway.in_plugin_directory(front, workdir)
    assert wrapped == ["env", "-C", str(workdir), *front]
    source = workdir / "plugins-local" / "src" / "modelplane.ai" / "apikeys"
    assert "import: modelplane.ai/apikeys" in (source / ".traefik.yml").read_text()
    assert "module modelplane.ai/apikeys" in (source / "go.mod").read_text()
    assert "package apikeys" in (source / "apikeys.go").read_text()
