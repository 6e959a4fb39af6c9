"""The control plane as a platform team installs it, running as pods and serving a model.

The image is built by `tools/image`'s builder from this tree and pushed to the fleet's
registry; the chart is installed with the real helm into `modelplane-system` (where the
fleet keeps the clusters' kubeconfig Secrets). Then, with nothing but those pods running
the control plane: the tour's model is placed and served through the front door (and,
with API keys required, refused without a key and answered with one, the chart's key
server answering Traefik through its Service); a PrefillDecode deployment (the kimi-k2
recipe, one prefill and one decode engine) is served through the front door by a router
running from the chart's image (endpoint-manager's `--router-image`, pulled by east's
node agent from the fleet registry); a
killed leader is replaced by its Deployment while the other copy takes its Lease and
keeps working; `helm uninstall` runs the chart's pre-delete hook, which removes every
Modelplane object through the running services, so the inference cluster keeps no
workload and the release leaves nothing behind.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from modelplane_imagebuild import build
from modelplane_localfleet import controlplane
from modelplane_localfleet.binaries import default_cache
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.tour import chat

from e2e import pdserving
from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, get, is_ready, items, wait_for
from tests.chart.helm import CHART, SERVICES, helm_binary, run_helm

pytestmark = pytest.mark.usefixtures("local_fleet")
ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "examples" / "tour"
RELEASE = "e2e-cp"
NAMESPACE = "modelplane-system"
KEY_NAMESPACE = "modelplane-api-keys"
"""Where the chart's gateway-config reads API keys (`services.gateway-config.apiKeyNamespace`)."""
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The control plane's image of this tree in the fleet registry: (repository, digest)."""
    layout = tmp_path_factory.mktemp("image") / "layout"
    built = build.build(ROOT, layout, build.default_cache(), build.uv_next_to_python(), print)
    pushed = controlplane.publish_image(layout, default_cache(), tag="e2e")
    repository, _, digest = pushed.partition("@")
    assert digest == built.image.digest
    return repository, digest


def helm(control: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return run_helm(helm_binary(), f"--kubeconfig={control.kubeconfig_path}", *args)


def pods_of(control: Cluster, service: str) -> list[Json]:
    selector = f"{INSTANCE},app.kubernetes.io/component={service}"
    return [
        pod
        for pod in items(control, "pods", "-n", NAMESPACE, "-l", selector)
        if not pod["metadata"].get("deletionTimestamp")
    ]


def holder(control: Cluster, service: str) -> str:
    return str(get(control, "lease", service, "-n", NAMESPACE)["spec"].get("holderIdentity"))


def leader_pod(control: Cluster, service: str) -> str | None:
    """The pod whose process holds the service's Lease (identity `<hostname>-<pid>`, the
    hostname being the pod's name)."""
    identity = holder(control, service)
    names = [p["metadata"]["name"] for p in pods_of(control, service) if is_ready(p)]
    return next((n for n in names if identity.startswith(f"{n}-")), None)


UNLED = {"activator"}
"""Services that hold no Lease: every copy serves (the activator is no controller)."""


def all_running(control: Cluster) -> bool:
    for service in SERVICES:
        ready = [p for p in pods_of(control, service) if is_ready(p)]
        if len(ready) != 2 or (service not in UNLED and leader_pod(control, service) is None):
            return False
    return True


@pytest.fixture(scope="module")
def installed(local_fleet: Fleet, image: tuple[str, str]) -> Iterator[Cluster]:
    control = local_fleet.cluster("control")
    repository, digest = image
    done = helm(
        control, "install", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--set", f"image.repository={repository}", "--set", f"image.digest={digest}",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        wait_for("every service's two copies Ready, one leading", lambda: all_running(control))
        # the Services' names, as cluster DNS gives them (the harness's Traefik asks the key
        # server at gateway-config.<namespace>.svc), as `modelplane up` names them
        local_fleet.add_hosts(controlplane.service_names(control))
        yield control
    finally:
        helm(control, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")


def tour_objects(namespace: str) -> list[Json]:
    """The tour's qwen-demo ModelDeployment and ModelService, in `namespace`."""
    docs = [d for d in yaml.safe_load_all((TOUR / "03-qwen-demo.yaml").read_text()) if d]
    objects = [d for d in docs if d["kind"] in ("ModelDeployment", "ModelService")]
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    return objects


def served(address: str) -> bool:
    status, _, _ = chat(address, "hello")
    return status == 200


def test_every_service_runs_from_the_image_with_one_copy_leading(
    installed: Cluster, image: tuple[str, str]
) -> None:
    _, digest = image
    for service in SERVICES:
        pods = pods_of(installed, service)
        assert len(pods) == 2 and all(is_ready(p) for p in pods), service
        for pod in pods:
            (status,) = pod["status"]["containerStatuses"]
            assert status["imageID"].endswith(f"@{digest}"), status["imageID"]
            assert pod["spec"]["nodeName"].startswith("control-system-")
        if service not in UNLED:
            assert leader_pod(installed, service) is not None, holder(installed, service)


def test_the_tours_model_is_served_through_the_front_door(
    installed: Cluster, namespace: str
) -> None:
    installed.kubectl("apply", "-f", str(TOUR / "01-inference-gateway.yaml"))
    installed.kubectl("apply", "-f", str(FLEET_FILE))
    apply(installed, *tour_objects(namespace))
    address = wait_for(
        "the ModelService's address",
        lambda: (get(installed, "modelservice", "qwen", "-n", namespace).get("status") or {}).get(
            "address"
        ),
    )
    assert str(address).endswith(f"/{namespace}/qwen")
    wait_for("an answer through the front door", lambda: served(str(address)), 240)
    status, reply, pod = chat(str(address), "once more")
    assert status == 200 and reply and pod.startswith(f"{namespace}/qwen-demo-")
    check_api_keys(installed, str(address), namespace)


def test_a_prefill_decode_deployment_is_served_by_a_router_from_the_charts_image(
    installed: Cluster, local_fleet: Fleet, image: tuple[str, str], namespace: str
) -> None:
    """The router pod runs the chart's image (east's node agent pulled it from the fleet
    registry: its imageID is the pushed digest), and a chat completion through the front
    door is prefilled on the prefill pod and decoded on the decode pod (the simulated
    engines' headers, `e2e.pdserving`)."""
    installed.kubectl("apply", "-f", str(TOUR / "01-inference-gateway.yaml"))
    installed.kubectl("apply", "-f", str(FLEET_FILE))
    one_each = {"kimi-prefill": (pdserving.HOPPER, 1), "kimi-decode": (pdserving.ADA, 1)}
    apply(installed, pdserving.kimi(namespace, one_each), pdserving.model_service(namespace))
    address = str(
        wait_for("the ModelService's address", lambda: pdserving.address_of(installed, namespace))
    )
    wait_for("an answer through the front door", lambda: pdserving.answered(address), 240)
    east = local_fleet.cluster("east")
    routers = items(east, "pods", "-n", namespace, "-l", "modelplane.ai/role=Router")
    (router,) = [p for p in routers if is_ready(p)]
    repository, digest = image
    assert router["spec"]["containers"][0]["image"] == f"{repository}@{digest}"
    (status,) = router["status"]["containerStatuses"]
    assert status["imageID"].endswith(f"@{digest}"), status["imageID"]
    prefill = pdserving.names(namespace, pdserving.pods_of(east, namespace, "kimi-prefill"))
    decode = pdserving.names(namespace, pdserving.pods_of(east, namespace, "kimi-decode"))
    client = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0)
    decoded_on, prefilled_on, has_text = pdserving.chat(client, stream=False)
    assert (decoded_on in decode, prefilled_on in prefill, has_text) == (True, True, True), (
        decoded_on, prefilled_on, decode, prefill
    )  # fmt: skip


KEY = "sk-e2e-chart-0123456789abcdef"


def keyed_chat(address: str, key: str | None) -> int:
    body = {"model": "qwen", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{address}/v1/chat/completions", json=body, headers=headers,
                      timeout=10).status_code  # fmt: skip


def check_api_keys(control: Cluster, address: str, namespace: str) -> None:
    """Keys required: the chart's gateway-config renders the keys into Traefik's key plugin
    (which reports counts to its Service, port `api-keys`): a missing key is refused, a key
    Secret in the key namespace (`modelplane-api-keys`, the chart's default, apart from the
    release namespace's kubeconfigs) is let through; then the front door is open again."""
    secret = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "e2e-chart", "namespace": KEY_NAMESPACE,
                     "labels": {"modelplane.ai/api-key": "true"}},
        "stringData": {"key": KEY, "services": f"{namespace}/qwen"},
    }  # fmt: skip
    required = {"spec": {"apiKeys": {"required": True}}}
    apply(control, secret)
    control.kubectl("patch", "inferencegateway", "default", "--type=merge",
                    "-p", json.dumps(required))  # fmt: skip
    seen: list[int] = []

    def answers(key: str | None, status: int) -> bool:
        seen.append(keyed_chat(address, key))
        return seen[-1] == status

    try:
        wait_for("a request without a key refused", lambda: answers(None, 401), 60)
        wait_for("the key let through", lambda: answers(KEY, 200), 60)
    except TimeoutError as error:
        raise AssertionError(f"{error}; answers seen: {seen[-10:]}") from None
    finally:
        control.kubectl("patch", "inferencegateway", "default", "--type=merge",
                        "-p", json.dumps({"spec": {"apiKeys": {"required": False}}}))  # fmt: skip
        control.kubectl("delete", "secret", "-n", KEY_NAMESPACE, "e2e-chart", check=False)
    wait_for("the front door open again", lambda: keyed_chat(address, None) == 200, 60)


def test_a_killed_leader_is_replaced_and_the_other_copy_takes_over(
    installed: Cluster, namespace: str
) -> None:
    """fleet-scheduler's leader dies (force-deleted, as a lost node would): the standby
    takes the Lease, the Deployment starts a new copy, and placement goes on."""
    apply(installed, *tour_objects(namespace))
    leader = leader_pod(installed, "fleet-scheduler")
    assert leader is not None
    installed.kubectl("delete", "pod", leader, "-n", NAMESPACE, "--grace-period=0", "--force")
    new_leader = wait_for(
        "the other copy leading",
        lambda: (found := leader_pod(installed, "fleet-scheduler")) not in (None, leader) and found,
        60,
    )
    assert new_leader != leader
    wait_for(
        "the Deployment's replacement copy Ready",
        lambda: len([p for p in pods_of(installed, "fleet-scheduler") if is_ready(p)]) == 2,
        120,
    )
    installed.kubectl("scale", "modeldeployment", "qwen-demo", "-n", namespace, "--replicas=2")
    wait_for(
        "a second replica placed by the new leader",
        lambda: len(items(installed, "modelreplicas", "-n", namespace)) == 2,
        60,
    )


def test_uninstall_removes_every_modelplane_object_and_leaves_nothing(
    installed: Cluster, local_fleet: Fleet, namespace: str
) -> None:
    apply(installed, *tour_objects(namespace))
    wait_for("a replica", lambda: items(installed, "modelreplicas", "-n", namespace), 60)
    done = helm(installed, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")
    assert done.returncode == 0, done.stderr
    for kind in ("modeldeployments", "modelreplicas", "modelservices", "modelendpoints"):
        assert items(installed, kind, "-A") == [], kind
    assert items(installed, "inferenceclusters") == []
    east = local_fleet.cluster("east")
    assert items(east, "deployments,services,pods", "-n", namespace) == []
    left = items(
        installed,
        "deployments,services,secrets,serviceaccounts,configmaps,roles,rolebindings,jobs",
        "-n", NAMESPACE, "-l", INSTANCE,
    )  # fmt: skip
    left += items(installed, "clusterroles,clusterrolebindings", "-l", INSTANCE)
    assert [f"{o['kind']}/{o['metadata']['name']}" for o in left] == []
