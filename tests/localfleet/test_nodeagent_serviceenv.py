"""Services as pods see them: kubelet's service variables and the hosts-file names."""

from __future__ import annotations

from typing import Any

from modelplane_localfleet.nodeagent import serviceenv

KUBERNETES: dict[str, Any] = {
    "metadata": {"name": "kubernetes", "namespace": "default"},
    "spec": {
        "clusterIP": "10.96.0.1",
        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
    },
}
API = {
    "metadata": {"name": "modelplane-api", "namespace": "ms"},
    "spec": {
        "clusterIP": "10.96.4.7",
        "ports": [{"name": "grpc", "port": 50051}, {"name": "http-status", "port": 9100}],
    },
}
HEADLESS = {
    "metadata": {"name": "engines", "namespace": "ms"},
    "spec": {"clusterIP": "None", "ports": [{"port": 8000}]},
}
ELSEWHERE = {
    "metadata": {"name": "other", "namespace": "team"},
    "spec": {"clusterIP": "10.96.9.9", "ports": [{"port": 80}]},
}
SERVICES = [KUBERNETES, API, HEADLESS, ELSEWHERE]


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ms"}, "spec": spec}


def test_kubernetes_variables_match_kubelets() -> None:
    env = serviceenv.service_env([KUBERNETES], _pod())
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
    }


def test_service_links_cover_the_pods_namespace_only_and_can_be_turned_off() -> None:
    env = serviceenv.service_env(SERVICES, _pod())
    assert env["MODELPLANE_API_SERVICE_HOST"] == "10.96.4.7"
    assert env["MODELPLANE_API_SERVICE_PORT"] == "50051"
    assert env["MODELPLANE_API_SERVICE_PORT_HTTP_STATUS"] == "9100"
    assert env["MODELPLANE_API_PORT_9100_TCP_ADDR"] == "10.96.4.7"
    assert not any(k.startswith(("ENGINES_", "OTHER_")) for k in env)
    without = serviceenv.service_env(SERVICES, _pod(enableServiceLinks=False))
    assert sorted({k.split("_")[0] for k in without}) == ["KUBERNETES"]


def test_without_kube_proxy_kubernetes_points_at_the_apiserver_itself() -> None:
    seen = serviceenv.as_seen(SERVICES, "10.240.0.2:6443")
    env = serviceenv.service_env(seen, _pod())
    assert env["KUBERNETES_SERVICE_HOST"] == "10.240.0.2"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert KUBERNETES["spec"]["clusterIP"] == "10.96.0.1"  # the watched object is untouched
    assert serviceenv.as_seen(SERVICES, None)[0]["spec"]["clusterIP"] == "10.96.0.1"


def test_hosts_lines_name_services_with_a_cluster_ip() -> None:
    assert serviceenv.host_names(SERVICES) == [
        [
            "10.96.0.1",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        [
            "10.96.4.7",
            "modelplane-api.ms",
            "modelplane-api.ms.svc",
            "modelplane-api.ms.svc.cluster.local",
        ],
        ["10.96.9.9", "other.team", "other.team.svc", "other.team.svc.cluster.local"],
    ]
