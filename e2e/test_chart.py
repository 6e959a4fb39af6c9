"""The Helm chart on the control cluster: accepted by the API server, installed, upgraded
in place, uninstalled without leftovers (but the API keys' namespace, kept by design), and a
wrong value refused before anything is made.

Each test installs into its own namespace under its own release name, so the release's
cluster-scoped roles (`<release>:<service>`) never meet the fleet's. The chart's default
image is in no fleet registry, so its pods do not run here: these tests assert the
objects and uninstall with `--no-hooks`. `test_chart_control_plane.py` installs the
chart with the image pushed to the fleet registry and runs it (hook included).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.backends import ClusterHandle
from e2e.kube import apply, get, items, wait_for
from tests.api.builders import valid
from tests.chart.helm import CHART, SERVICES, helm_binary, run_helm, template_args
from tests.chart.uninstall import uninstall_module

INSTANCE = "app.kubernetes.io/instance"
NAMESPACED = ",".join(
    ("deployments", "replicasets", "pods", "services", "secrets", "serviceaccounts",
     "configmaps", "roles", "rolebindings", "jobs", "poddisruptionbudgets")
)  # fmt: skip


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_binary()


@pytest.fixture
def release(namespace: str) -> str:
    return "chart-" + hashlib.sha256(namespace.encode()).hexdigest()[:8]


def helm_on(helm: Path, control: ClusterHandle, *args: str) -> subprocess.CompletedProcess[str]:
    return run_helm(helm, f"--kubeconfig={control.kubeconfig_path}", *args)


def owned(control: ClusterHandle, namespace: str, release: str) -> list[str]:
    """`kind/name` of every object labelled with the release, in its namespace and cluster-wide."""
    selector = f"--selector={INSTANCE}={release}"
    found = items(control, NAMESPACED, "--namespace", namespace, selector)
    found += items(control, "clusterroles,clusterrolebindings", selector)
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in found)


def tls_data(control: ClusterHandle, namespace: str) -> dict[str, Any]:
    names = ["fleet-scheduler-tls", "cluster-provisioner-tls", "endpoint-manager-tls"]
    return {n: get(control, "secret", n, "--namespace", namespace)["data"] for n in names}


def test_rendered_chart_is_accepted_by_the_api_server(
    helm: Path, control: ClusterHandle, namespace: str, release: str
) -> None:
    rendered = run_helm(
        helm, *template_args(namespace=namespace, release=release), "--include-crds"
    )
    assert rendered.returncode == 0, rendered.stderr
    result = control.kubectl(
        "apply", "--dry-run=server", "--server-side", "--field-manager=e2e-chart",
        "--force-conflicts", "-f", "-", stdin=rendered.stdout, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    applied = result.stdout.splitlines()
    for service in SERVICES:
        assert f"deployment.apps/{service} serverside-applied (server dry run)" in applied
    assert f"job.batch/{release}-uninstall serverside-applied (server dry run)" in applied
    assert any(line.startswith("customresourcedefinition") for line in applied)


def test_install_upgrade_and_uninstall_leave_nothing_behind(
    helm: Path, control: ClusterHandle, namespace: str, release: str
) -> None:
    install = helm_on(helm, control, "install", release, str(CHART), "--namespace", namespace)
    assert install.returncode == 0, install.stderr
    deployments = {
        d["metadata"]["name"]: d for d in items(control, "deployments", "--namespace", namespace)
    }
    assert set(deployments) == set(SERVICES)
    assert all(d["spec"]["replicas"] == 2 for d in deployments.values())
    services = {
        s["metadata"]["name"]: s for s in items(control, "services", "--namespace", namespace)
    }
    # one per service, and the headless `endpoint-manager-peers` (every copy by address)
    assert set(services) == {*SERVICES, "endpoint-manager-peers"}
    assert services.pop("endpoint-manager-peers")["spec"]["clusterIP"] == "None"
    assert all(s["spec"]["clusterIP"] not in ("", "None") for s in services.values())
    for service in SERVICES:
        assert get(control, "clusterrole", f"{release}:{service}")["rules"]
    certificates = tls_data(control, namespace)

    upgrade = helm_on(
        helm, control, "upgrade", release, str(CHART), "--namespace", namespace,
        "--set", "services.gateway-config.replicas=1",
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    assert tls_data(control, namespace) == certificates  # looked up and kept
    gateway = get(control, "deployment", "gateway-config", "--namespace", namespace)
    assert gateway["spec"]["replicas"] == 1

    uninstall = helm_on(
        helm, control, "uninstall", release, "--namespace", namespace, "--no-hooks", "--wait"
    )
    assert uninstall.returncode == 0, uninstall.stderr
    wait_for("the release's objects to go", lambda: not owned(control, namespace, release) or None)
    left = items(control, "all", "--namespace", namespace)
    assert left == [], [f"{o['kind']}/{o['metadata']['name']}" for o in left]
    control.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=60s")


def test_the_key_namespace_is_made_when_missing_kept_on_uninstall_and_taken_back(
    helm: Path, control: ClusterHandle, namespace: str, release: str
) -> None:
    """The API keys' namespace of its own: made by the install, where gateway-config's
    ServiceAccount may list Secrets (and may not in the release namespace, home of the
    kubeconfigs); left with its keys by uninstall; a reinstall takes it back."""
    keys = f"{namespace}-keys"
    args = ("--namespace", namespace, "--set", f"services.gateway-config.apiKeyNamespace={keys}")
    account = f"--as=system:serviceaccount:{namespace}:gateway-config"

    def may_list_secrets(where: str) -> str:
        answer = control.kubectl("auth", "can-i", "list", "secrets", "-n", where, account,
                                 check=False)  # fmt: skip
        return str(answer.stdout.strip())

    try:
        install = helm_on(helm, control, "install", release, str(CHART), *args)
        assert install.returncode == 0, install.stderr
        made = get(control, "namespace", keys)["metadata"]
        assert made["annotations"]["helm.sh/resource-policy"] == "keep"
        assert made["annotations"]["meta.helm.sh/release-name"] == release
        assert (may_list_secrets(keys), may_list_secrets(namespace)) == ("yes", "no")
        uninstall = helm_on(helm, control, "uninstall", release, "--no-hooks", "--wait", *args[:2])
        assert uninstall.returncode == 0, uninstall.stderr
        kept = get(control, "namespace", keys)["metadata"]
        assert "deletionTimestamp" not in kept
        assert may_list_secrets(keys) == "no"  # the Role and its binding went with the release
        again = helm_on(helm, control, "install", release, str(CHART), *args)
        assert again.returncode == 0, again.stderr
        assert may_list_secrets(keys) == "yes"
        uninstall = helm_on(helm, control, "uninstall", release, "--no-hooks", "--wait", *args[:2])
        assert uninstall.returncode == 0, uninstall.stderr
    finally:
        control.kubectl("delete", "namespace", keys, "--wait=false", check=False)


def test_install_with_a_wrong_value_is_refused_naming_it(
    helm: Path, control: ClusterHandle, namespace: str, release: str
) -> None:
    result = helm_on(
        helm, control, "install", release, str(CHART), "--namespace", namespace,
        "--set", "services.cluster-provisioner.grpcPort=70000",
    )  # fmt: skip
    assert result.returncode != 0
    assert "/services/cluster-provisioner/grpcPort" in result.stderr
    assert helm_on(helm, control, "status", release, "--namespace", namespace).returncode != 0
    assert items(control, "deployments", "--namespace", namespace) == []


def test_uninstall_hook_may_list_and_delete_every_modelplane_kind_and_nothing_else(
    helm: Path, control: ClusterHandle, namespace: str, release: str
) -> None:
    """The hook's ServiceAccount, ClusterRole and binding as rendered, created for real: the
    API server's authorizer grants what files/uninstall.py does on every kind it walks
    (list and delete, or list alone for what gateway-config prunes), and no more."""
    rendered = run_helm(
        helm, *template_args(namespace=namespace, release=release),
        "--show-only", "templates/uninstall-hook.yaml",
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    rbac = [
        doc for doc in yaml.safe_load_all(rendered.stdout)
        if doc and doc["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]  # fmt: skip
    assert len(rbac) == 3
    apply(control, *rbac)
    account = f"--as=system:serviceaccount:{namespace}:{release}-uninstall"
    try:
        for collection in (c for phase in uninstall_module().PHASES for c in phase):
            api = collection.path.split("/")
            resource = collection.plural if api[1] == "api" else f"{collection.plural}.{api[2]}"
            for verb in ("list", "delete") if collection.delete else ("list",):
                allowed = control.kubectl(
                    "auth", "can-i", verb, resource, "--all-namespaces", account, check=False
                )
                assert allowed.stdout.strip() == "yes", (verb, resource, allowed.stderr)
        for verb, what in (
            ("delete", "secrets"), ("delete", "services"),
            ("delete", "httproutes.gateway.networking.k8s.io"),
            ("create", "modeldeployments.modelplane.ai"),
        ):  # fmt: skip
            denied = control.kubectl("auth", "can-i", verb, what, "-A", account, check=False)
            assert denied.stdout.strip() == "no", (verb, what)
    finally:
        name = f"{release}:uninstall"
        control.kubectl("delete", "clusterrolebinding,clusterrole", name, check=False)


def test_uninstall_script_deletes_then_waits_out_a_finalizer_on_the_real_api(
    control: ClusterHandle, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """files/uninstall.py's loop against the control cluster, over this test's namespace
    only (the fleet's own InferenceClusters must stay): a ModelService held by a finalizer
    nobody releases keeps it waiting, and it gives up naming the object and the finalizer,
    before touching the next phase; once the finalizer goes it finishes."""
    hook = uninstall_module()
    api = f"/apis/modelplane.ai/v1alpha1/namespaces/{namespace}"
    phases = (
        (hook.Collection("modelservices", f"{api}/modelservices"),
         hook.Collection("modelendpoints", f"{api}/modelendpoints")),
        (hook.Collection("modelcaches", f"{api}/modelcaches"),),
    )  # fmt: skip
    held = valid("ModelService")
    held["metadata"] |= {"namespace": namespace, "finalizers": ["e2e.modelplane.ai/hold"]}
    endpoint, cache = valid("ModelEndpoint"), valid("ModelCache")
    for obj in (endpoint, cache):
        obj["metadata"]["namespace"] = namespace
    apply(control, held, endpoint, cache)

    async def uninstall_twice() -> tuple[int, int]:
        first = await hook.run(str(control.kubeconfig_path), 6, phases)
        assert items(control, "modelendpoints", "--namespace", namespace) == []
        (service,) = items(control, "modelservices", "--namespace", namespace)
        assert service["metadata"]["deletionTimestamp"]
        assert len(items(control, "modelcaches", "--namespace", namespace)) == 1
        control.kubectl(
            "patch", "modelservice", service["metadata"]["name"], "--namespace", namespace,
            "--type=merge", "--patch", '{"metadata": {"finalizers": null}}',
        )  # fmt: skip
        return first, await hook.run(str(control.kubeconfig_path), 60, phases)

    with caplog.at_level(logging.INFO, logger="modelplane.uninstall"):
        first, second = asyncio.run(uninstall_twice())
    assert first == 1
    stuck = [r.fields["object"] for r in caplog.records if r.getMessage() == "still there"]  # type: ignore[attr-defined]
    assert stuck == [f"modelservices/{namespace}/qwen (held by e2e.modelplane.ai/hold)"]
    assert second == 0
    for plural in ("modelservices", "modelendpoints", "modelcaches"):
        assert items(control, plural, "--namespace", namespace) == []
