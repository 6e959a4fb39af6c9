"""skaffold on the local fleet, as a developer runs it: `run` builds the image with
`tools/image`, pushes it to the fleet registry and installs the chart until every
Deployment is Ready; `dev` puts a change to a service's Python file into the running pod.

skaffold works on a clone of this repository (committed content, `.venv` linked), so the
test's edit never touches the checkout. The release is skaffold.yaml's own (`modelplane`
in `modelplane-system`), beside the harness's roles (`localfleet:<service>`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelplane_localfleet import registry
from modelplane_localfleet.binaries import build, default_cache
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.components import HELM, SKAFFOLD
from modelplane_localfleet.fleet import Fleet

from e2e.kube import Json, get, is_ready, items, wait_for
from tests.chart.helm import SERVICES, run_helm

pytestmark = pytest.mark.usefixtures("local_fleet")
ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "modelplane-system"
EDITED = Path("services/fleet-scheduler/fleet_scheduler/__init__.py")
IN_IMAGE = Path("usr/local/lib/python3.11/dist-packages/fleet_scheduler/__init__.py")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clone = tmp_path_factory.mktemp("skaffold") / "modelplane"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    return clone


def skaffold_env(control: Cluster) -> dict[str, str]:
    cache = default_cache()
    helm = build(HELM, cache, print) / "helm"
    skaffold = build(SKAFFOLD, cache, print) / "skaffold"
    path = os.pathsep.join([str(skaffold.parent), str(helm.parent), os.environ["PATH"]])
    return {**os.environ, "PATH": path, "KUBECONFIG": str(control.kubeconfig_path),
            "SKAFFOLD_UPDATE_CHECK": "false", "SKAFFOLD_DISABLE_MONITORING": "true"}  # fmt: skip


def skaffold_args(command: str) -> list[str]:
    return ["skaffold", command, "-p", "local-fleet", f"--default-repo={registry.ADDRESS}"]


def deployment(control: Cluster, service: str) -> Json:
    return get(control, "deployment", service, "-n", NAMESPACE)


def rolled_out(control: Cluster, service: str) -> bool:
    found = deployment(control, service)
    status, wanted = found["status"], found["spec"]["replicas"]
    return bool(
        status.get("observedGeneration") == found["metadata"]["generation"]
        and status.get("updatedReplicas") == wanted == status.get("readyReplicas")
        and status.get("replicas") == wanted
    )


def image_of(control: Cluster, service: str) -> str:
    return str(deployment(control, service)["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture(scope="module")
def ran(local_fleet: Fleet, workspace: Path) -> Iterator[Cluster]:
    control = local_fleet.cluster("control")
    done = subprocess.run(
        [*skaffold_args("run"), "--status-check=true"], cwd=workspace, env=skaffold_env(control),
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    try:
        yield control
    finally:
        helm = build(HELM, default_cache(), print) / "helm"
        run_helm(helm, f"--kubeconfig={control.kubeconfig_path}", "uninstall", "modelplane",
                 "--namespace", NAMESPACE, "--wait")  # fmt: skip


def test_run_installs_the_chart_with_the_image_it_built_and_pushed(ran: Cluster) -> None:
    for service in SERVICES:
        assert rolled_out(ran, service), service
        assert image_of(ran, service).startswith(f"{registry.ADDRESS}/modelplane:")
        pods = items(ran, "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/component={service}")
        assert pods and all(is_ready(p) for p in pods), service


def _running_copy(pod: Json) -> str:
    """The edited module as the pod's process sees it (through /proc/PID/root)."""
    (status,) = pod["status"]["containerStatuses"]
    pid = str(status["containerID"]).removeprefix("localfleet://")
    return (Path("/proc") / pid / "root" / IN_IMAGE).read_text()


def test_dev_puts_a_python_edit_into_the_running_pod(ran: Cluster, workspace: Path) -> None:
    marker = f"# edited by e2e at {time.time()}"
    before = image_of(ran, "fleet-scheduler")
    with (workspace / "dev.log").open("w") as log:
        dev = subprocess.Popen(
            [*skaffold_args("dev"), "--cleanup=false", "--port-forward=false"],
            cwd=workspace, env=skaffold_env(ran), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def watching() -> bool:
                said = (workspace / "dev.log").read_text()
                assert dev.poll() is None, f"skaffold dev ended:\n{said[-4000:]}"
                return "Watching for changes" in said

            wait_for("skaffold dev watching", watching, 600)
            edited = workspace / EDITED
            edited.write_text(edited.read_text() + f"\n{marker}\n")
            wait_for("a new image", lambda: image_of(ran, "fleet-scheduler") != before, 300)
            wait_for("the new pods Ready", lambda: rolled_out(ran, "fleet-scheduler"), 300)
        finally:
            dev.terminate()
            dev.wait(60)
    selector = "app.kubernetes.io/component=fleet-scheduler"
    pods = [
        p
        for p in items(ran, "pods", "-n", NAMESPACE, "-l", selector)
        if is_ready(p) and not p["metadata"].get("deletionTimestamp")
    ]
    assert pods
    for pod in pods:
        assert marker in _running_copy(pod), json.dumps(pod["status"])[:2000]
