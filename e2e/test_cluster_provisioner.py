"""cluster-provisioner on the local fleet: Existing clusters' status follows the clusters.

The service runs as its own process with its own client certificate (user
`modelplane:cluster-provisioner`, bound to the chart's RBAC files), reading the
kubeconfig Secrets `up` stored in `modelplane-system`.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from modelplane.naming import POOL_LABEL
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE, harness
from e2e.kube import Json, apply, condition, get, wait_for
from e2e.services import Service, cluster_provisioner, grpc_client, tls_dir

pytestmark = pytest.mark.usefixtures("local_fleet")
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests"
NOT_READY_WITHIN_S = 15
FLEET_API_PORT = 50171
AT_REST_S = 9
"""Polled every 3 s as before, a cluster got at least 6 GETs in this window; watched, at
most one (the probe after 30 s without a word from it)."""


@pytest.fixture(scope="module")
def provisioner(local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("cluster-provisioner") / "service.log"
    service = cluster_provisioner(local_fleet, 9101, FLEET_API_PORT, log)
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    try:
        yield service
    finally:
        service.stop()
        print(log.read_text()[-4000:])


def ready(control: Cluster, name: str) -> Json:
    return condition(get(control, "inferencecluster", name), "Ready")


def is_ready(control: Cluster, name: str) -> bool:
    return ready(control, name).get("status") == "True"


def test_existing_clusters_turn_ready_with_their_gateway_and_pools(
    local_fleet: Fleet, provisioner: Service
) -> None:
    control = local_fleet.cluster("control")
    for name in ("east", "west"):
        wait_for(f"{name} Ready", functools.partial(is_ready, control, name))
    east = get(control, "inferencecluster", "east")
    assert east["status"]["gatewayAddress"] == local_fleet.cluster("east").plan.address
    assert [(p["name"], p["className"], p["nodes"]) for p in east["status"]["pools"]] == [
        ("l4", "l4-single", 3),
        ("h100", "h100-2x", 2),
    ]
    assert east["status"]["pools"][1]["devices"][0]["count"] == 2
    assert east["status"]["observedGeneration"] == east["metadata"]["generation"]
    table = control.kubectl("get", "ic").stdout
    assert any(
        line.split()[:4] == ["east", "Existing", "True", "10.240.0.2"]
        for line in table.splitlines()
    ), table
    code, body = provisioner.get("/metrics")
    assert code == 200
    assert (
        'modelplane_reconcile_total{kind="InferenceCluster",result="ok",service="cluster-provisioner"}'
        in body
    )
    assert 'modelplane_leader{service="cluster-provisioner"} 1.0' in body
    assert provisioner.get("/readyz")[0] == 200


def _gets_to(service: Service, server: str) -> float:
    """The GET requests `service` has made to the API server at `server` (its /metrics)."""
    pattern = re.compile(r"^modelplane_api_requests_total\{(.*)\} (\S+)$")
    total = 0.0
    for line in service.get("/metrics")[1].splitlines():
        found = pattern.match(line)
        if found and 'method="GET"' in found[1] and f'server="{server}"' in found[1]:
            total += float(found[2])
    return total


def _l4_nodes(control: Cluster) -> int:
    pools = get(control, "inferencecluster", "east")["status"]["pools"]
    return int(next(p["nodes"] for p in pools if p["name"] == "l4"))


def test_a_node_leaving_a_pool_reaches_the_status_through_the_watch_without_polling(
    local_fleet: Fleet, provisioner: Service
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    wait_for("east's l4 pool at 3 nodes", lambda: _l4_nodes(control) == 3)
    gets = _gets_to(provisioner, east.plan.server)
    time.sleep(AT_REST_S)
    at_rest = _gets_to(provisioner, east.plan.server) - gets
    print(f"GETs to east in {AT_REST_S}s at rest: {at_rest:g}")
    assert at_rest <= 1, "more than the one idle probe: the cluster is being polled"
    node = east.kubectl(
        "get", "nodes", "-l", f"{POOL_LABEL}=l4", "-o", "jsonpath={.items[0].metadata.name}"
    ).stdout.strip()
    east.kubectl("label", "node", node, f"{POOL_LABEL}-")
    began = time.monotonic()
    try:
        wait_for("east's l4 pool at 2 nodes", lambda: _l4_nodes(control) == 2, 30)
        print(f"a node leaving the pool reached the status in {time.monotonic() - began:.1f}s")
    finally:
        east.kubectl("label", "node", node, f"{POOL_LABEL}=l4", "--overwrite")
    wait_for("east's l4 pool at 3 nodes again", lambda: _l4_nodes(control) == 3, 30)


def _cluster(
    name: str, secret: str, class_name: str = "l4-single", source: str = "Existing"
) -> Json:
    cluster: Json = {"source": source}
    if source == "Existing":
        cluster["existing"] = {"secretRef": {"name": secret, "key": "kubeconfig"}}
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "InferenceCluster",
        "metadata": {"name": name},
        "spec": {
            "cluster": cluster,
            "nodePools": [{"name": "p", "className": class_name, "nodeCount": 1}],
        },
    }


def test_bad_input_is_a_condition_on_the_right_object_and_nothing_else_moves(
    local_fleet: Fleet, provisioner: Service
) -> None:
    control = local_fleet.cluster("control")
    for doc in ("inference-class-gke-l4.yaml", "inference-cluster-gke.yaml"):
        apply(control, yaml.safe_load((SEED / "concepts" / doc).read_text()))
    apply(
        control,
        _cluster("nosecret", "nosecret-kubeconfig"),
        _cluster("noclass", "east-kubeconfig", "absent"),
    )

    def reason(name: str, kind: str = "Ready") -> str | None:
        return condition(get(control, "inferencecluster", name), kind).get("reason")

    wait_for("gke refused", lambda: reason("gke-us-central") == "ProvisioningNotSupported")
    wait_for("secret named", lambda: reason("nosecret") == "SecretNotFound")
    assert ready(control, "nosecret")["message"] == (
        "InferenceCluster/nosecret spec.cluster.existing.secretRef.name: "
        "Secret modelplane-system/nosecret-kubeconfig not found"
    )
    wait_for("class named", lambda: reason("noclass", "PoolsAvailable") == "ClassNotFound")
    assert get(control, "inferencecluster", "noclass")["status"]["pools"] == []
    assert ready(control, "east")["status"] == "True"
    assert provisioner.process.poll() is None

    east_config = local_fleet.cluster("east").kubeconfig_path.read_bytes()
    secret = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "nosecret-kubeconfig", "namespace": "modelplane-system"},
        "data": {"kubeconfig": base64.b64encode(east_config).decode()},
    }  # fmt: skip
    apply(control, secret)
    wait_for(
        "the cluster Ready once its Secret exists", lambda: reason("nosecret") == "ClusterReady"
    )
    control.kubectl("delete", "ic", "nosecret", "noclass", "gke-us-central")


def test_a_stopped_cluster_turns_not_ready_in_bounded_time_and_ready_again(
    local_fleet: Fleet, provisioner: Service, tmp_path: Path
) -> None:
    control = local_fleet.cluster("control")
    fleet_file = tmp_path / "lossy.yaml"
    fleet_file.write_text(
        FLEET_FILE.read_text() + "\n---\n" + json.dumps(_cluster("lossy", "lossy-kubeconfig"))
    )
    added = harness("add", "lossy", "-f", str(fleet_file), "--state", str(local_fleet.state))
    assert added.returncode == 0, added.stderr
    try:
        apply(control, _cluster("lossy", "lossy-kubeconfig"))
        wait_for("lossy Ready", lambda: ready(control, "lossy").get("status") == "True")
        assert harness("stop", "lossy", "--state", str(local_fleet.state)).returncode == 0
        began = time.monotonic()
        wait_for("lossy not Ready", lambda: ready(control, "lossy").get("status") == "False", 60)
        lost_after = time.monotonic() - began
        print(f"lossy turned not Ready {lost_after:.1f}s after stop")
        assert lost_after < NOT_READY_WITHIN_S
        assert ready(control, "lossy")["reason"] == "ClusterUnreachable"
        assert get(control, "inferencecluster", "lossy")["status"]["gatewayAddress"]
        assert harness("start", "lossy", "--state", str(local_fleet.state)).returncode == 0
        began = time.monotonic()
        wait_for("lossy Ready again", lambda: ready(control, "lossy").get("status") == "True", 60)
        print(f"lossy Ready again {time.monotonic() - began:.1f}s after start returned")
    finally:
        control.kubectl("delete", "ic", "lossy", "--ignore-not-found")
        harness("remove", "lossy", "--state", str(local_fleet.state))


def test_only_cluster_provisioner_may_read_kubeconfig_secrets(local_fleet: Fleet) -> None:
    control = local_fleet.cluster("control")
    for service, allowed in (("cluster-provisioner", "yes"), ("fleet-scheduler", "no")):
        answer = control.kubectl(
            f"--kubeconfig={control.kubeconfig_for(service)}", "auth", "can-i", "get", "secrets",
            "-n", "modelplane-system", check=False,
        )  # fmt: skip
        assert answer.stdout.strip() == allowed, (service, answer.stdout, answer.stderr)
    denied = control.kubectl(
        f"--kubeconfig={control.kubeconfig_for('fleet-scheduler')}",
        "get", "secret", "east-kubeconfig", "-n", "modelplane-system", check=False,
    )  # fmt: skip
    assert "Forbidden" in denied.stderr


def test_the_fleet_api_acts_on_a_named_cluster_over_mutual_tls(
    local_fleet: Fleet, provisioner: Service
) -> None:
    control = local_fleet.cluster("control")
    east = local_fleet.cluster("east")
    target = f"{control.plan.address}:{FLEET_API_PORT}"
    wait_for("the Fleet API serving", lambda: provisioner.get("/readyz")[0] == 200)
    client_tls = str(tls_dir(local_fleet, "fleet-scheduler"))
    seen = grpc_client("fleet-roundtrip", target, client_tls)
    assert seen == {
        "applied": "via-fleet",
        "got": {"hello": "east"},
        "listed": ["via-fleet"],
        "first_event": ["ADDED", "via-fleet"],
        "deleted": True,
        "next_event": seen["next_event"],
        "deleted_again": False,
        "get_missing": ["NOT_FOUND", "cluster east: configmaps default/via-fleet not found"],
        "unknown_cluster": ["NOT_FOUND", "no InferenceCluster 'nowhere'"],
    }
    assert seen["next_event"] in ("MODIFIED", "DELETED")
    assert not east.kubectl("get", "configmap", "via-fleet", check=False).stdout
    codes = grpc_client("refused", "fleet", target, client_tls)
    assert codes["with_cert"] == ["OK", ""], codes
    assert codes["ca_only"][0] == codes["plain"][0] == "UNAVAILABLE", codes


def test_a_second_copy_takes_over_when_the_leader_dies(
    local_fleet: Fleet, provisioner: Service, tmp_path: Path
) -> None:
    control = local_fleet.cluster("control")
    standby = cluster_provisioner(local_fleet, 9102, FLEET_API_PORT + 1, tmp_path / "standby.log")
    try:
        wait_for("the standby serving", lambda: standby.get("/healthz")[0] == 200)
        lease = get(control, "lease", "-n", "modelplane-system", "cluster-provisioner")
        assert lease["spec"]["holderIdentity"].endswith(f"-{provisioner.process.pid}")
        assert 'modelplane_leader{service="cluster-provisioner"} 0.0' in standby.get("/metrics")[1]
        provisioner.stop()
        began = time.monotonic()
        wait_for(
            "the standby to hold the lease",
            lambda: get(control, "lease", "-n", "modelplane-system", "cluster-provisioner")["spec"][
                "holderIdentity"
            ].endswith(f"-{standby.process.pid}"),
            timeout_s=30,
        )
        took = time.monotonic() - began
        print(f"standby took over {took:.1f}s after the leader was killed")
        assert took <= lease["spec"]["leaseDurationSeconds"] + 5
    finally:
        standby.stop()
