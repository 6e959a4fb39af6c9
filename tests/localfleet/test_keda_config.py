"""KEDA outside pods: upstream's RBAC for our user, its APIService and webhooks pointed at the
processes, one certificate for all three, ports clear of the rest of the fleet.

The manifests are upstream's own, read from the pinned module's source (a download of the
module alone, no build)."""

from __future__ import annotations

import base64
import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from modelplane_localfleet import binaries, keda, services
from modelplane_localfleet.components import KEDA
from modelplane_localfleet.gomod import module_info
from modelplane_localfleet.layout import PORTS
from modelplane_localfleet.pki import CertificateAuthority

ADDRESS = "10.240.0.1"
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture(scope="module")
def entry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KEDA cache entry's manifests, copied from the pinned module as a build copies them."""
    root = Path(module_info(KEDA.upstream, KEDA.version)["Dir"])
    out = tmp_path_factory.mktemp("keda-entry")
    for manifests in KEDA.manifests:
        binaries.copy_manifests_from(root, KEDA, manifests, out)
    return out


def _by(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_entry_carries_keda_crds_for_scaledobjects(entry: Path) -> None:
    names = {p.name for p in (entry / "crds").glob("*.yaml")}
    assert "keda.sh_scaledobjects.yaml" in names
    assert "keda.sh_triggerauthentications.yaml" in names


def test_upstream_bindings_of_the_service_account_name_our_user_instead(entry: Path) -> None:
    objects = keda.rbac_objects(entry)
    bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    subjects = [s for b in bindings for s in b["subjects"]]
    assert not [s for s in subjects if s.get("name") == "keda-operator"]
    ours = [b["metadata"]["name"] for b in bindings if b["subjects"][0]["kind"] == "User"]
    # the operator's cluster-wide and namespaced roles, auth delegation and the auth reader
    assert {"keda-operator", "keda-system-auth-delegator", "keda-auth-reader"} <= set(ours)
    for name in ours:
        binding = next(b for b in bindings if b["metadata"]["name"] == name)
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "modelplane:keda"}
        ]
    hpa = _by(objects, "ClusterRoleBinding", "keda-hpa-controller-external-metrics")
    assert hpa["subjects"] == [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]


def test_namespaced_roles_land_in_keda_unless_upstream_names_another(entry: Path) -> None:
    objects = keda.rbac_objects(entry)
    assert _by(objects, "Role", "keda-operator")["metadata"]["namespace"] == "keda"
    assert _by(objects, "RoleBinding", "keda-operator")["metadata"]["namespace"] == "keda"
    assert _by(objects, "RoleBinding", "keda-auth-reader")["metadata"]["namespace"] == "kube-system"


def test_the_operator_may_scale_any_scale_subresource(entry: Path) -> None:
    """A ModelDeployment's `modeldeployments/scale` is covered without naming our group."""
    role = _by(keda.rbac_objects(entry), "ClusterRole", "keda-operator")
    scale_rules = [r for r in role["rules"] if "*/scale" in r.get("resources", [])]
    assert scale_rules and "*" in scale_rules[0]["apiGroups"]
    assert {"get", "update", "patch"} <= set(scale_rules[0]["verbs"])


def test_the_external_metrics_api_names_a_selectorless_service_on_the_adapter(
    entry: Path,
) -> None:
    objects = keda.registrations(entry, ADDRESS, b"CA PEM")
    assert objects[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}}
    apiservice = _by(objects, "APIService", "v1beta1.external.metrics.k8s.io")
    spec = apiservice["spec"]
    assert spec["service"] == {"name": "keda-metrics-apiserver", "namespace": "keda", "port": 443}
    assert base64.b64decode(spec["caBundle"]) == b"CA PEM"
    assert "insecureSkipTLSVerify" not in spec
    assert (spec["group"], spec["version"]) == ("external.metrics.k8s.io", "v1beta1")
    service = _by(objects, "Service", "keda-metrics-apiserver")
    assert "selector" not in service["spec"]
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("https", 443, 6444)
    endpoint_slice = _by(objects, "EndpointSlice", "keda-metrics-apiserver")
    assert endpoint_slice["endpoints"][0]["addresses"] == [ADDRESS]
    assert endpoint_slice["ports"] == [{"name": "https", "port": 6444, "protocol": "TCP"}]
    assert endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"] == (
        "keda-metrics-apiserver"
    )


def test_every_admission_webhook_calls_the_webhook_process_with_the_ca_bundle(
    entry: Path,
) -> None:
    objects = keda.registrations(entry, ADDRESS, b"CA PEM")
    configuration = _by(objects, "ValidatingWebhookConfiguration", "keda-admission")
    hooks = configuration["webhooks"]
    urls = [hook["clientConfig"]["url"] for hook in hooks]
    assert "https://10.240.0.1:9445/validate-keda-sh-v1alpha1-scaledobject" in urls
    assert len(hooks) >= 4
    for hook in hooks:
        assert set(hook["clientConfig"]) == {"url", "caBundle"}
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == b"CA PEM"


def test_one_certificate_serves_and_authenticates_all_three(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("control-ca", NOW)
    ca_pem = ca.pair().cert_pem
    keda.write_certs(ca, ca_pem, tmp_path, ADDRESS, NOW)
    assert (tmp_path / "ca.crt").read_bytes() == ca_pem
    assert (tmp_path / "tls.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    cert.verify_directly_issued_by(ca.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(sans.get_values_for_type(x509.DNSName))
    # the aggregator checks the adapter's certificate against <service>.<namespace>.svc
    assert "keda-metrics-apiserver.keda.svc" in names
    assert "keda-operator.keda.svc.cluster.local" in names
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [ADDRESS]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_the_adapter_reaches_the_operators_metrics_service_where_it_listens(
    tmp_path: Path,
) -> None:
    operator = keda.operator_command(tmp_path, ADDRESS, tmp_path / "certs")
    adapter = keda.adapter_command(tmp_path, ADDRESS, tmp_path / "certs", tmp_path / "kc")
    listen = next(a for a in operator if a.startswith("--metrics-service-bind-address="))
    dial = next(a for a in adapter if a.startswith("--metrics-service-address="))
    assert listen.split("=", 1)[1] == dial.split("=", 1)[1] == "10.240.0.1:9666"
    assert "--enable-cert-rotation=false" in operator
    assert f"--bind-address={ADDRESS}" in adapter
    assert f"--secure-port={keda.PORTS.adapter_https}" in adapter


def test_keda_ports_are_clear_of_every_other_port_of_the_fleet() -> None:
    """The adapter's metrics and the webhooks bind all addresses of the namespace."""
    ours = list(dataclasses.asdict(keda.PORTS).values())
    others = [
        *dataclasses.asdict(PORTS).values(),
        *services.STATUS_PORTS.values(),
        *services.GRPC_PORTS.values(),
    ]
    assert len(set(ours)) == len(ours)
    assert not set(ours) & set(others)


def test_the_processes_get_the_namespace_upstream_pods_read_from_their_environment(
    tmp_path: Path,
) -> None:
    env = keda.environment(tmp_path / "keda.kubeconfig")
    assert env == {
        "KUBECONFIG": str(tmp_path / "keda.kubeconfig"),
        "POD_NAMESPACE": "keda",
        "KEDA_CLUSTER_OBJECT_NAMESPACE": "keda",
        "WATCH_NAMESPACE": "",
    }
