"""endpoint-manager on the local fleet: a ModelDeployment becomes a serving replica and an endpoint.

cluster-provisioner (Fleet API), fleet-scheduler and endpoint-manager run as
their own processes and identities. The documentation's qwen3-8b deployment,
applied as written except its namespace and cluster selector, is placed on
`east`; endpoint-manager composes its Deployment, ResourceClaimTemplate,
Service and HTTPRoute there through the Fleet API, reports Synced and Ready,
and publishes a ModelEndpoint whose URL plus rewrite path reaches the engine
pod through east's gateway. A replica on a cluster that was never provisioned is
deleted at once (nothing of it was ever applied there), and the module teardown's
drain, when it cannot finish, names the replica left and still stops the services.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, is_ready, items, wait_for
from e2e.services import (
    Service,
    cluster_provisioner,
    endpoint_manager,
    fleet_scheduler,
    serving,
)
from e2e.simulator import call
from tests.api.builders import valid

pytestmark = pytest.mark.usefixtures("local_fleet")
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests"
FLEET_API_PORT = 50191


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    address = control.plan.address
    running = {
        "cluster-provisioner": cluster_provisioner(
            local_fleet, 9131, FLEET_API_PORT, logs / "cp.log"
        ),
        "fleet-scheduler": fleet_scheduler(local_fleet, 9132, 50192, logs / "fs.log"),
        "endpoint-manager": endpoint_manager(
            local_fleet, 9133, f"{address}:{FLEET_API_PORT}", logs / "em.log"
        ),
    }
    with serving(control, running, drain=True) as ready:
        yield ready


def qwen(namespace: str, replicas: int = 1) -> Json:
    """The documentation's qwen3-8b ModelDeployment, in `namespace`, on us-east."""
    manifest: Json = yaml.safe_load(
        (SEED / "examples" / "qwen3-8b" / "model-deployment.yaml").read_text()
    )
    manifest["metadata"]["namespace"] = namespace
    manifest["metadata"]["labels"] = {"team": "ml"}
    manifest["spec"]["replicas"] = replicas
    manifest["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    return manifest


def replica_conditions(control: Cluster, namespace: str, name: str) -> dict[str, str]:
    found = get(control, "modelreplica", "-n", namespace, name)
    return {c["type"]: c["status"] for c in (found.get("status") or {}).get("conditions") or []}


def endpoints(control: Cluster, namespace: str) -> dict[str, Json]:
    return {e["metadata"]["name"]: e for e in items(control, "modelendpoints", "-n", namespace)}


def on_east(east: Cluster, namespace: str, kind: str) -> list[str]:
    return sorted(
        o["metadata"]["name"]
        for o in items(east, kind, "-n", namespace, "-l", "modelplane.ai/replica")
    )


def test_a_deployment_becomes_a_ready_replica_with_an_endpoint_that_serves(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    began = time.monotonic()
    apply(control, qwen(namespace))
    replica = wait_for(
        "one ModelReplica", lambda: items(control, "modelreplicas", "-n", namespace), 30
    )[0]
    name = replica["metadata"]["name"]
    assert replica["spec"]["clusterName"] == "east"

    found = wait_for("the ModelEndpoint", lambda: endpoints(control, namespace), 120)
    print(f"ModelEndpoint published {time.monotonic() - began:.1f}s after kubectl apply")
    assert replica_conditions(control, namespace, name) == {"Synced": "True", "Ready": "True"}
    table = control.kubectl("get", "modelreplica", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "CLUSTER", "SYNCED", "READY"], table
    assert table[1].split()[1:4] == ["east", "True", "True"], table

    endpoint = found[name]
    labels = endpoint["metadata"]["labels"]
    assert labels["modelplane.ai/deployment"] == "qwen3-8b"
    assert labels["modelplane.ai/cluster"] == "east"
    assert labels["team"] == "ml"
    gateway = get(control, "inferencecluster", "east")["status"]["gatewayAddress"]
    assert endpoint["spec"] == {"url": f"http://{gateway}", "rewritePath": f"/{namespace}/{name}/"}

    pods = [p for p in items(east, "pods", "-n", namespace) if is_ready(p)]
    pool = replica["spec"]["engines"][0]["nodePoolName"]
    assert len(pods) == 1 and pods[0]["spec"]["nodeName"].startswith(f"east-{pool}-")
    pod = pods[0]
    claims = pod["spec"]["resourceClaims"]
    assert len(claims) == 1 and claims[0].get("resourceClaimTemplateName")
    engine = pod["spec"]["containers"][0]
    assert (
        engine["args"]
        == qwen(namespace)["spec"]["engines"][0]["members"][0]["template"]["spec"]["containers"][0][
            "args"
        ]
    ), "the template passes through as written"
    assert engine["readinessProbe"]["httpGet"]["path"] == "/health"

    base = f"http://{gateway}{endpoint['spec']['rewritePath']}"
    reply = call(
        base + "v1/chat/completions",
        {"model": "qwen", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8},
    )
    assert reply.status == 200, reply
    assert reply.pod == f"{namespace}/{pod['metadata']['name']}"
    assert call(base + "health").status == 200


def test_a_63_character_deployment_name_is_served_and_a_longer_one_is_refused(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    """A deployment name is the value of the modelplane.ai/deployment label on every replica
    and endpoint, so it may be as long as a label value (63) and no longer: at 63 characters
    it is served end to end and scales through its selector; at 253 kubectl is told why."""
    control = local_fleet.cluster("control")
    long_name = "qwen3-8b-" + "x" * 54
    too_long = "qwen3-8b-" + "y" * 244
    assert (len(long_name), len(too_long)) == (63, 253)
    manifest = qwen(namespace)
    manifest["metadata"]["name"] = too_long
    refused = control.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    assert refused.returncode != 0
    assert "metadata.name: Too long: may not be more than 63 bytes" in refused.stderr, refused

    manifest["metadata"]["name"] = long_name
    apply(control, manifest)
    found = wait_for("the ModelEndpoint", lambda: endpoints(control, namespace), 120)
    ((name, endpoint),) = found.items()
    assert len(name) <= 63 and name.startswith("qwen3-8b-x"), name
    assert endpoint["metadata"]["labels"]["modelplane.ai/deployment"] == long_name
    base = f"{endpoint['spec']['url']}{endpoint['spec']['rewritePath']}"
    reply = call(
        base + "v1/chat/completions",
        {"model": "qwen", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8},
    )
    assert reply.status == 200, reply
    scale = get(control, "modeldeployment", "-n", namespace, long_name)["status"]
    assert scale["selector"] == f"modelplane.ai/deployment={long_name}"
    control.kubectl("scale", "-n", namespace, f"md/{long_name}", "--replicas=0")
    wait_for("the endpoint withdrawn", lambda: not endpoints(control, namespace), 60)
    wait_for("the replica gone", lambda: not items(control, "modelreplicas", "-n", namespace), 60)


def test_an_edit_updates_the_workload_in_place_and_scale_to_zero_drains_then_tears_down(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    apply(control, qwen(namespace))
    wait_for("the ModelEndpoint", lambda: endpoints(control, namespace), 120)
    deployments = on_east(east, namespace, "deployments")
    assert len(deployments) == 1
    before = get(east, "deployment", "-n", namespace, deployments[0])

    edited = qwen(namespace)
    engine = edited["spec"]["engines"][0]["members"][0]["template"]["spec"]["containers"][0]
    engine["env"] = [{"name": "EDITED", "value": "yes"}]
    apply(control, edited)

    def rolled() -> Json | None:
        now = get(east, "deployment", "-n", namespace, deployments[0])
        env = now["spec"]["template"]["spec"]["containers"][0].get("env") or []
        return now if {"name": "EDITED", "value": "yes"} in env else None

    after = wait_for("the edit on east", rolled, 60)
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "updated in place"
    assert on_east(east, namespace, "deployments") == deployments

    control.kubectl("scale", "-n", namespace, "md/qwen3-8b", "--replicas=0")
    wait_for("the endpoint withdrawn", lambda: not endpoints(control, namespace), 30)
    assert on_east(east, namespace, "deployments") == deployments, "endpoint goes first"
    wait_for(
        "the replica gone",
        lambda: not items(control, "modelreplicas", "-n", namespace),
        60,
    )
    for kind in ("deployments", "services", "httproutes", "resourceclaimtemplates"):
        assert on_east(east, namespace, kind) == [], kind


def replica_on_gone(namespace: str, name: str, *finalizers: str) -> Json:
    """A ModelReplica naming the cluster `gone`, which the control plane does not know."""
    member = {
        "role": "Standalone",
        "nodePoolName": "l4",
        "template": {"spec": {"containers": [{"name": "engine", "image": "x"}]}},
    }
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelReplica",
        "metadata": {"name": name, "namespace": namespace, "finalizers": list(finalizers)},
        "spec": {"clusterName": "gone", "engines": [{"name": "e", "members": [member]}]},
    }


def test_a_replica_on_a_deleted_cluster_is_released_without_teardown(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    """A ModelReplica naming a cluster the control plane does not know (a mock of one whose
    InferenceCluster is gone) is deleted at once: nothing to tear down, finalizer released."""
    control = local_fleet.cluster("control")
    apply(control, replica_on_gone(namespace, "orphan"))

    def synced_reason() -> str | None:
        found = get(control, "modelreplica", "-n", namespace, "orphan")
        return condition(found, "Synced").get("reason")

    assert wait_for("the orphan's Synced condition", synced_reason, 30) == "ClusterNotFound"
    assert (
        "modelplane.ai/endpoint-manager"
        in get(control, "modelreplica", "-n", namespace, "orphan")["metadata"]["finalizers"]
    )
    control.kubectl("delete", "modelreplica", "-n", namespace, "orphan", "--wait=false")
    wait_for(
        "the orphan released",
        lambda: not items(control, "modelreplicas", "-n", namespace),
        30,
    )


NOWHERE = "gke-nowhere"
"""A GKE InferenceCluster with no real cluster behind it: never provisioned, no kubeconfig."""


def test_a_deployment_placed_on_a_cluster_never_provisioned_is_deleted_cleanly(
    local_fleet: Fleet, services: dict[str, Service], namespace: str
) -> None:
    """The API builders' objects as they once leaked into a later module: a GKE
    InferenceCluster nobody provisions and a ModelReplica pinned there, which
    endpoint-manager adopts and cannot apply anything of; then its ModelDeployment, which
    fleet-scheduler cannot place there (it deletes the replica), and the deployment's and
    replica's deletion. The replica is gone within seconds instead of never."""
    control = local_fleet.cluster("control")
    cluster = valid("InferenceCluster")
    cluster["metadata"] = {"name": NOWHERE, "labels": {"modelplane.ai/region": "nowhere"}}
    deployment = valid("ModelDeployment")
    deployment["metadata"]["namespace"] = namespace
    deployment["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "nowhere"}}
    replica = valid("ModelReplica")
    replica["metadata"] = {"name": f"qwen-{NOWHERE}-0", "namespace": namespace}
    replica["spec"]["clusterName"] = NOWHERE
    name = replica["metadata"]["name"]
    apply(control, cluster, replica)
    try:

        def apply_failed() -> Json | None:
            found = get(control, "modelreplica", "-n", namespace, name)
            synced = condition(found, "Synced")
            return found if synced.get("reason") == "ApplyFailed" else None

        found = wait_for("endpoint-manager to try the replica", apply_failed, 60)
        assert "modelplane.ai/endpoint-manager" in found["metadata"]["finalizers"]
        assert "no kubeconfig" in condition(found, "Synced")["message"], found["status"]
        assert "modelplane.ai/applied-on" not in (found["metadata"].get("annotations") or {})
        apply(control, deployment)
        control.kubectl("delete", "modeldeployment", "-n", namespace, "qwen", "--wait=false")
        control.kubectl(
            "delete", "modelreplica", "-n", namespace, name, "--wait=false", "--ignore-not-found"
        )
        wait_for(
            "the replica on the unprovisioned cluster released",
            lambda: not items(control, "modelreplicas", "-n", namespace),
            30,
        )
    finally:
        control.kubectl("delete", "inferencecluster", NOWHERE, "--wait=false", check=False)
    wait_for(
        f"InferenceCluster {NOWHERE} gone",
        lambda: NOWHERE not in {c["metadata"]["name"] for c in items(control, "inferenceclusters")},
        30,
    )


def test_a_drain_that_cannot_finish_names_the_replica_left_and_still_stops_the_services(
    local_fleet: Fleet, services: dict[str, Service], namespace: str, tmp_path: Path
) -> None:
    """`e2e.services.serving(drain=True)` around a standby fleet-scheduler, with a replica a
    foreign finalizer holds: the drain fails naming that replica and its cluster, and the
    standby is stopped all the same (it once stayed up into the next module)."""
    control = local_fleet.cluster("control")
    hold = "e2e.modelplane.ai/hold"
    apply(control, replica_on_gone(namespace, "held", hold))
    standby = fleet_scheduler(local_fleet, 9134, 50193, tmp_path / "standby.log")
    try:
        with (
            pytest.raises(TimeoutError) as failed,
            serving(control, {"standby": standby}, clusters=(), drain=True, drain_s=5),
        ):
            pass
        assert standby.process.poll() is not None, "the standby still runs"
        message = str(failed.value)
        assert f"ModelReplica {namespace}/held on cluster 'gone'" in message, message
        assert hold in message, message
    finally:
        standby.stop()
        control.kubectl(
            "patch", "modelreplica", "-n", namespace, "held", "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip


def test_a_killed_endpoint_manager_restarts_with_no_duplicate_and_no_failed_request(
    local_fleet: Fleet, services: dict[str, Service], namespace: str, tmp_path: Path
) -> None:
    """One replica serves under a steady request loop; the deployment scales to two and
    endpoint-manager is killed (SIGKILL) while it composes the second; a new copy
    converges: one set of objects per replica on east, one endpoint each, and not one
    failed request to the replica that stayed Ready."""
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    apply(control, qwen(namespace))
    first = wait_for("the first endpoint", lambda: endpoints(control, namespace), 120)
    (endpoint,) = first.values()
    url = f"{endpoint['spec']['url']}{endpoint['spec']['rewritePath']}health"
    failures: list[str] = []
    sent = [0]
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            reply = call(url, timeout_s=5)
            sent[0] += 1
            if reply.status != 200:
                failures.append(f"{reply.status} {reply.body!r}"[:200])
            time.sleep(0.1)

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    try:
        control.kubectl("scale", "-n", namespace, "md/qwen3-8b", "--replicas=2")
        wait_for(
            "a second Deployment on east",
            lambda: len(on_east(east, namespace, "deployments")) == 2,
            60,
        )
        services["endpoint-manager"].stop()
        address = control.plan.address
        services["endpoint-manager"] = endpoint_manager(
            local_fleet, 9133, f"{address}:{FLEET_API_PORT}", tmp_path / "em2.log"
        )
        wait_for("two endpoints", lambda: len(endpoints(control, namespace)) == 2, 120)
        time.sleep(2)
    finally:
        stop.set()
        asker.join(10)
    assert sent[0] > 20 and failures == [], failures
    assert len(items(control, "modelreplicas", "-n", namespace)) == 2
    for kind in ("deployments", "services", "httproutes", "resourceclaimtemplates"):
        assert len(on_east(east, namespace, kind)) == 2, (kind, on_east(east, namespace, kind))
