"""What the chart carries from elsewhere in the repository: the RBAC files the local fleet
binds too, and the CRDs tools/apigen generates, packaged by `helm package`."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import yaml
from modelplane_localfleet import services as fleet_services

from tests.chart.helm import CHART, NAMESPACE, RELEASE, SERVICES, by_kind, run_helm
from tools.apigen.api import KINDS
from tools.apigen.crdgen import crd_files


def namespaced(objects: list[dict[str, Any]], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    """`kind`'s objects by (namespace, name)."""
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects if o["kind"] == kind
    }


def test_rbac_rules_are_the_files_the_local_fleet_binds(rendered: list[dict[str, Any]]) -> None:
    """Each file's ClusterRole, and each Role in the namespace it names (by default the
    release's; the API keys' by its default name under default values), bound to the
    service's ServiceAccount."""
    assert set(fleet_services.SERVICES) == set(SERVICES)
    cluster_roles = by_kind(rendered, "ClusterRole")
    roles = namespaced(rendered, "Role")
    bindings = namespaced(rendered, "RoleBinding")
    for service in SERVICES:
        files = list(yaml.safe_load_all((CHART / "files" / "rbac" / f"{service}.yaml").read_text()))
        name = f"{RELEASE}:{service}"
        subjects = [{"kind": "ServiceAccount", "name": service, "namespace": NAMESPACE}]
        (cluster_role,) = [doc for doc in files if doc["kind"] == "ClusterRole"]
        assert cluster_roles[name]["rules"] == cluster_role["rules"]
        binding = by_kind(rendered, "ClusterRoleBinding")[name]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name,
        }  # fmt: skip
        assert binding["subjects"] == subjects
        file_roles = [doc for doc in files if doc["kind"] == "Role"]
        where = {doc["metadata"].get("namespace", NAMESPACE) for doc in file_roles}
        assert {ns for ns, n in roles if n == name} == where, service
        for role in file_roles:
            key = (role["metadata"].get("namespace", NAMESPACE), name)
            assert roles[key]["rules"] == role["rules"]
            assert bindings[key]["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name,
            }  # fmt: skip
            assert bindings[key]["subjects"] == subjects


def test_chart_crds_are_the_generated_ones() -> None:
    generated = {Path(rel).name: text for rel, text in crd_files(KINDS).items()}
    in_chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert in_chart == generated


def test_helm_package_carries_crds_rbac_and_the_hook_script(helm: Path, tmp_path: Path) -> None:
    result = run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("modelplane-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        crds = {n for n in names if n.startswith("modelplane/crds/")}
        assert {f"modelplane/crds/{Path(rel).name}" for rel in crd_files(KINDS)} == crds
        for service in SERVICES:
            assert f"modelplane/files/rbac/{service}.yaml" in names
        assert "modelplane/files/uninstall.py" in names
        assert "modelplane/values.schema.json" in names
