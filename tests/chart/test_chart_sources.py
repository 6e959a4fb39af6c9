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


def test_rbac_rules_are_the_files_the_local_fleet_binds(rendered: list[dict[str, Any]]) -> None:
    assert set(fleet_services.SERVICES) == set(SERVICES)
    cluster_roles = by_kind(rendered, "ClusterRole")
    roles = by_kind(rendered, "Role")
    for service in SERVICES:
        files = {
            doc["kind"]: doc
            for doc in yaml.safe_load_all(
                (CHART / "files" / "rbac" / f"{service}.yaml").read_text()
            )
        }
        name = f"{RELEASE}:{service}"
        assert cluster_roles[name]["rules"] == files["ClusterRole"]["rules"]
        assert roles[name]["rules"] == files["Role"]["rules"]
        assert roles[name]["metadata"]["namespace"] == NAMESPACE
        for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
            binding = by_kind(rendered, kind)[name]
            assert binding["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name,
            }  # fmt: skip
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": service, "namespace": NAMESPACE}
            ]


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
