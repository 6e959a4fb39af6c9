"""The chart rendered with its defaults: every object known, every service runnable as rendered.

Each Deployment's command is the service's console script (as pyproject names it) and
its args are parsed by the service's own argument parser; Services select exactly their
Deployment's pods and expose the ports the args bind; probes hit the status server.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from typing import Any

import pytest
from activator.__main__ import parser as activator_parser
from cache_hydrator.__main__ import parser as cache_hydrator_parser
from cluster_provisioner.__main__ import parser as cluster_provisioner_parser
from endpoint_manager.__main__ import parser as endpoint_manager_parser
from fleet_scheduler.__main__ import parser as fleet_scheduler_parser
from gateway_config.__main__ import parser as gateway_config_parser

from tests.chart.helm import NAMESPACE, RELEASE, ROOT, SERVICES, by_kind

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "cluster-provisioner": cluster_provisioner_parser,
    "fleet-scheduler": fleet_scheduler_parser,
    "endpoint-manager": endpoint_manager_parser,
    "gateway-config": gateway_config_parser,
    "cache-hydrator": cache_hydrator_parser,
    "activator": activator_parser,
}
KNOWN_KINDS = {
    ("v1", "ServiceAccount"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ConfigMap"),
    ("apps/v1", "Deployment"), ("batch/v1", "Job"), ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "Namespace"),
}  # fmt: skip
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding"}
# gateway-config's API keys: the one namespace apart from the release's (the Namespace
# itself, and gateway-config's Role and RoleBinding there).
KEY_NAMESPACE = "modelplane-api-keys"


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


POD_IP = "10.244.0.7"


def parsed_args(rendered: list[dict[str, Any]], service: str) -> argparse.Namespace:
    """The service's own parser on its args, `$(POD_IP)` expanded as kubelet would from the
    container's env (which must take POD_IP from the downward API's status.podIP)."""
    spec = container(by_kind(rendered, "Deployment")[service])
    pod_ip = {e["name"]: e for e in spec.get("env", [])}["POD_IP"]
    assert pod_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    args = [arg.replace("$(POD_IP)", POD_IP) for arg in spec["args"]]
    return PARSERS[service]().parse_args(args)


def test_every_object_is_a_known_kind_in_the_release_namespace(
    rendered: list[dict[str, Any]],
) -> None:
    for obj in rendered:
        assert (obj["apiVersion"], obj["kind"]) in KNOWN_KINDS, obj["kind"]
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == KEY_NAMESPACE
        elif namespace == KEY_NAMESPACE:
            assert obj["kind"] in ("Role", "RoleBinding")
            assert obj["metadata"]["name"] == f"{RELEASE}:gateway-config"
        elif obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None
            assert obj["metadata"]["name"].startswith(f"{RELEASE}:")
        else:
            assert namespace == NAMESPACE, obj["metadata"]["name"]


def test_one_deployment_per_service_running_its_console_script(
    rendered: list[dict[str, Any]],
) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    deployments = by_kind(rendered, "Deployment")
    assert set(deployments) == set(SERVICES)
    for service, deployment in deployments.items():
        command = container(deployment)["command"]
        assert command == [f"modelplane-{service}"]
        assert command[0] in scripts
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == service


@pytest.mark.parametrize("service", SERVICES)
def test_args_are_accepted_by_the_services_own_parser(
    rendered: list[dict[str, Any]], service: str
) -> None:
    args = parsed_args(rendered, service)
    assert getattr(args, "namespace", NAMESPACE) == NAMESPACE  # the activator has none
    assert args.status_address == f"{POD_IP}:9090"
    assert args.kubeconfig is None  # in-cluster


def test_grpc_servers_bind_every_address_with_mutual_tls(rendered: list[dict[str, Any]]) -> None:
    for service, port in (("fleet-scheduler", 50061), ("cluster-provisioner", 50071)):
        args = parsed_args(rendered, service)
        assert args.listen == f"{POD_IP}:{port}"
        assert (args.tls_cert, args.tls_key, args.tls_ca) == (
            "/etc/modelplane/tls/tls.crt", "/etc/modelplane/tls/tls.key", "/etc/modelplane/tls/ca.crt",
        )  # fmt: skip
        assert not args.insecure
    assert parsed_args(rendered, "fleet-scheduler").in_cluster


@pytest.mark.parametrize("client", ["endpoint-manager", "cache-hydrator"])
def test_fleet_clients_dial_the_cluster_provisioner_service(
    rendered: list[dict[str, Any]], client: str
) -> None:
    args = parsed_args(rendered, client)
    host, _, port = args.fleet.rpartition(":")
    service = by_kind(rendered, "Service")["cluster-provisioner"]
    assert host == f"cluster-provisioner.{NAMESPACE}.svc"
    assert {"name": "grpc", "port": int(port)}.items() <= service["spec"]["ports"][1].items()
    assert args.tls_ca and args.tls_cert and not args.insecure


def test_endpoint_manager_runs_routers_on_the_control_plane_image(
    rendered: list[dict[str, Any]],
) -> None:
    args = parsed_args(rendered, "endpoint-manager")
    assert (
        args.router_image == container(by_kind(rendered, "Deployment")["endpoint-manager"])["image"]
    )


def test_tls_files_are_mounted_from_the_services_secret(rendered: list[dict[str, Any]]) -> None:
    secrets = by_kind(rendered, "Secret")
    for service in ("fleet-scheduler", "cluster-provisioner", "endpoint-manager", "cache-hydrator"):
        deployment = by_kind(rendered, "Deployment")[service]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
        assert mounts["tls"]["mountPath"] == "/etc/modelplane/tls"
        secret = volumes["tls"]["secret"]["secretName"]
        assert set(secrets[secret]["data"]) == {"tls.crt", "tls.key", "ca.crt"}


def test_services_select_their_deployments_pods_and_expose_its_ports(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = by_kind(rendered, "Deployment")
    services = by_kind(rendered, "Service")
    peers = services.pop("endpoint-manager-peers")  # headless: every copy by address
    assert peers["spec"]["clusterIP"] == "None"
    assert peers["spec"]["selector"] == services["endpoint-manager"]["spec"]["selector"]
    assert [p["name"] for p in peers["spec"]["ports"]] == ["scaler"]
    for service, svc in services.items():
        pod = deployments[service]["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        for other, deployment in deployments.items():
            if other != service:  # no other service's pods
                assert not svc["spec"]["selector"].items() <= (
                    deployment["spec"]["template"]["metadata"]["labels"].items()
                )
        named = {p["name"]: p["containerPort"] for p in container(deployments[service])["ports"]}
        for port in svc["spec"]["ports"]:
            assert named[port["targetPort"]] == port["port"]
        assert named["metrics"] == 9090


def test_probes_hit_the_status_server(rendered: list[dict[str, Any]]) -> None:
    for deployment in by_kind(rendered, "Deployment").values():
        main = container(deployment)
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert main["resources"]["requests"]["cpu"]


def test_replicas_and_gateway_settings_reach_the_deployments(helm: Any) -> None:
    from tests.chart.helm import render

    objects = render(
        helm,
        "replicas=3",
        "services.gateway-config.replicas=1",
        "services.gateway-config.gatewayClass=envoy",
        "services.gateway-config.backendCAConfigMap=backend-ca",
        "image.digest=sha256:" + "a" * 64,
    )
    deployments = by_kind(objects, "Deployment")
    assert deployments["fleet-scheduler"]["spec"]["replicas"] == 3
    assert deployments["gateway-config"]["spec"]["replicas"] == 1
    args = PARSERS["gateway-config"]().parse_args(container(deployments["gateway-config"])["args"])
    assert (args.gateway_class, args.backend_ca_configmap) == ("envoy", "backend-ca")
    assert (
        container(deployments["gateway-config"])["image"]
        == "modelplane/modelplane@sha256:" + "a" * 64
    )
    # P/D replicas' router runs from the control plane's own image, pinned the same way
    args = PARSERS["endpoint-manager"]().parse_args(
        container(deployments["endpoint-manager"])["args"]
    )
    assert args.router_image == "modelplane/modelplane@sha256:" + "a" * 64


def test_uninstall_hook_runs_the_chart_script_before_the_services_go(
    rendered: list[dict[str, Any]],
) -> None:
    from tests.chart.uninstall import uninstall_module

    job = by_kind(rendered, "Job")[f"{RELEASE}-uninstall"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    config = by_kind(rendered, "ConfigMap")[f"{RELEASE}-uninstall"]
    assert (
        config["data"]["uninstall.py"]
        == (ROOT / "charts/modelplane/files/uninstall.py").read_text()
    )
    command = container({"spec": job["spec"]})["command"]
    assert command[1] == "/etc/modelplane/uninstall/uninstall.py"
    assert uninstall_module().parser().parse_args(command[2:]).timeout == 270
    role = by_kind(rendered, "ClusterRole")[f"{RELEASE}:uninstall"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = set()
    for collection in (c for phase in uninstall_module().PHASES for c in phase):
        api = collection.path.split("/")
        group = "" if api[1] == "api" else api[2]
        verbs = ("get", "list", "delete") if collection.delete else ("list",)
        needed |= {(group, collection.plural, verb) for verb in verbs}
    assert granted == needed
    for obj in (role, config, by_kind(rendered, "ServiceAccount")[f"{RELEASE}-uninstall"]):
        assert int(obj["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0  # before the Job


def test_a_disruption_budget_keeps_one_copy_of_each_replicated_service(helm: Any) -> None:
    from tests.chart.helm import render

    objects = render(helm, "replicas=1", "services.endpoint-manager.replicas=2")
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert set(budgets) == {"endpoint-manager"}
    deployment = by_kind(objects, "Deployment")["endpoint-manager"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budgets["endpoint-manager"]["spec"]["maxUnavailable"] == 1
    assert (
        budgets["endpoint-manager"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    )


def test_cache_hydrator_runs_jobs_from_the_charts_image_against_the_public_hub(
    rendered: list[dict[str, Any]],
) -> None:
    args = parsed_args(rendered, "cache-hydrator")
    image = container(by_kind(rendered, "Deployment")["cache-hydrator"])["image"]
    assert (args.hydrate_image, args.hub) == (image, "https://huggingface.co")


def test_gateway_config_routes_services_at_zero_to_the_activators_service(
    rendered: list[dict[str, Any]],
) -> None:
    url = parsed_args(rendered, "gateway-config").activator_url
    activator = parsed_args(rendered, "activator")
    service = by_kind(rendered, "Service")["activator"]
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    assert url == f"http://activator.{NAMESPACE}.svc:{http['port']}"
    assert activator.listen == f"{POD_IP}:{http['port']}"
    # Held requests are reported to every copy of this release's endpoint-manager.
    assert activator.scaler == f"endpoint-manager.{NAMESPACE}.svc:50081"
    assert activator.scaler_peers == f"endpoint-manager-peers.{NAMESPACE}.svc"
    assert activator.tls_cert == "/etc/modelplane/tls/tls.crt"
