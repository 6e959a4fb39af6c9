"""A PrefillDecode replica on its cluster: two phase engines, their Services, the router (pure).

Replicas come from the fleet-scheduler's offline planner on the e2e fleet
(`e2e/fleet.yaml`; east: pool `l4` of one-L4 nodes, pool `h100` of two-H100 nodes): the kimi-k2 recipe's shape, prefill on Hopper, decode on Ada.
Expected names, selectors, RBAC rules and flags are written out here.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from endpoint_manager.decide import Applied, Observed, decide
from endpoint_manager.workload import Rendered, UnsupportedError, render
from modelplane.scheduling.offline import plan

Json = dict[str, Any]
FLEET = list(yaml.safe_load_all((Path(__file__).parents[3] / "e2e" / "fleet.yaml").read_text()))
ROUTER_IMAGE = "registry.example/modelplane/modelplane@sha256:abc"
REPLICA = "ModelReplica ml-team/kimi-east-0"
LABELS = {
    "app.kubernetes.io/managed-by": "modelplane-endpoint-manager",
    "modelplane.ai/replica": "kimi-east-0",
    "modelplane.ai/deployment": "kimi",
}
KV = '--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_both"}'
ADA = 'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"'
HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'


def member(role: str, *args: str, gpu: str = ADA, **extra: Any) -> Json:
    engine = {"name": "engine", "image": "vllm/vllm-openai:v0.23.0", "args": list(args)}
    return {
        "role": role,
        "nodeSelector": {"devices": [{"name": "gpu", "count": 1, "selectors": [{"cel": gpu}]}]},
        "template": {"spec": {"containers": [engine]}},
        **extra,
    }


def pd(*engines: Json) -> Json:
    """The one ModelReplica the fleet-scheduler makes of a PrefillDecode `kimi` (west has no
    Hopper pool, so both phases land on east, each on its own pool)."""
    deployment = {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "kimi", "namespace": "ml-team", "uid": "u-1"},
        "spec": {
            "replicas": 1,
            "serving": {"mode": "PrefillDecode"},
            "engines": list(engines),
        },
    }
    result = plan([*FLEET, deployment])
    assert not result.failed, result
    (report,) = result.deployments
    (replica,) = report.manifests
    return copy.deepcopy(replica)


PREFILL: Json = {"name": "prefill", "phase": "Prefill",
           "members": [member("Standalone", "--model=kimi", KV, gpu=HOPPER)]}  # fmt: skip
DECODE: Json = {"name": "decode", "phase": "Decode", "copies": 2,
          "members": [member("Standalone", "--model=kimi", KV)]}  # fmt: skip
KIMI = pd(PREFILL, DECODE)


def named(rendered: Rendered, kind: str, name: str) -> Json:
    (found,) = [o for o in rendered.objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_objects_and_their_apply_order() -> None:
    rendered = render(KIMI, ROUTER_IMAGE)
    assert [(o["kind"], o["metadata"]["name"]) for o in rendered.objects] == [
        ("Namespace", "ml-team"),
        ("ResourceClaimTemplate", rendered.objects[1]["metadata"]["name"]),
        ("ResourceClaimTemplate", rendered.objects[2]["metadata"]["name"]),
        ("Deployment", "kimi-east-0-prefill"),
        ("Deployment", "kimi-east-0-decode"),
        ("Service", "kimi-east-0-prefill"),
        ("Service", "kimi-east-0-decode"),
        ("ServiceAccount", "kimi-east-0-router"),
        ("Role", "kimi-east-0-router"),
        ("RoleBinding", "kimi-east-0-router"),
        ("Deployment", "kimi-east-0-router"),
        ("Service", "kimi-east-0"),
        ("HTTPRoute", "kimi-east-0"),
    ]
    assert rendered.serving_service == "kimi-east-0"
    assert rendered.path == "/ml-team/kimi-east-0/"
    for obj in rendered.objects[1:]:
        assert obj["metadata"]["namespace"] == "ml-team"
        assert LABELS.items() <= obj["metadata"]["labels"].items()


def test_each_phase_runs_copies_pods_on_its_own_pool() -> None:
    assert KIMI["spec"]["clusterName"] == "east"
    assert [e["nodePoolName"] for e in KIMI["spec"]["engines"]] == ["h100", "l4"]
    rendered = render(KIMI, ROUTER_IMAGE)
    prefill = named(rendered, "Deployment", "kimi-east-0-prefill")
    decode = named(rendered, "Deployment", "kimi-east-0-decode")
    assert prefill["spec"]["replicas"] == 1
    assert decode["spec"]["replicas"] == 2
    pools = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["nodeSelector"]["modelplane.ai/pool"]
        for d in (prefill, decode)
    }
    assert pools == {"kimi-east-0-prefill": "h100", "kimi-east-0-decode": "l4"}
    # the engine flags pass through as written
    args = prefill["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--model=kimi", KV]


def test_a_service_per_phase_selects_that_engines_serving_pods() -> None:
    rendered = render(KIMI, ROUTER_IMAGE)
    for phase in ("prefill", "decode"):
        service = named(rendered, "Service", f"kimi-east-0-{phase}")
        assert service["spec"]["selector"] == {
            "modelplane.ai/replica": "kimi-east-0",
            "modelplane.ai/engine": phase,
            "modelplane.ai/serving": "true",
        }
        assert service["spec"]["ports"] == [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8000}
        ]
        labels = named(rendered, "Deployment", f"kimi-east-0-{phase}")["spec"]["template"][
            "metadata"
        ]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


def test_the_router_may_read_endpointslices_of_its_namespace_and_nothing_else() -> None:
    rendered = render(KIMI, ROUTER_IMAGE)
    role = named(rendered, "Role", "kimi-east-0-router")
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = named(rendered, "RoleBinding", "kimi-east-0-router")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "kimi-east-0-router",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kimi-east-0-router", "namespace": "ml-team"}
    ]


def test_the_router_follows_both_phase_services_from_the_system_nodes() -> None:
    rendered = render(KIMI, ROUTER_IMAGE)
    router = named(rendered, "Deployment", "kimi-east-0-router")
    pod = router["spec"]["template"]
    (box,) = pod["spec"]["containers"]
    assert box["image"] == ROUTER_IMAGE
    assert box["command"] == ["modelplane-pd-router"]
    assert box["args"] == [
        "--namespace=ml-team",
        "--prefill-service=kimi-east-0-prefill",
        "--decode-service=kimi-east-0-decode",
        "--listen=$(POD_IP):8000",
        "--status-address=$(POD_IP):9090",
        "--shutdown-grace=30",
    ]
    assert box["env"] == [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    ]
    assert box["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 9090}
    assert pod["spec"]["serviceAccountName"] == "kimi-east-0-router"
    assert pod["spec"]["nodeSelector"] == {"modelplane.ai/system": "true"}
    assert "modelplane.ai/pool" not in pod["spec"]["nodeSelector"]
    assert "resourceClaims" not in pod["spec"]
    assert router["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_the_router_waits_out_its_prestop_then_drains_within_its_termination_grace() -> None:
    router = named(render(KIMI, ROUTER_IMAGE), "Deployment", "kimi-east-0-router")
    pod = router["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    (grace,) = [a.split("=", 1)[1] for a in box["args"] if a.startswith("--shutdown-grace=")]
    # Services stop sending before SIGTERM: a sleep the kubelet runs first (no shell or
    # sleep binary needed in the image)
    assert box["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    # the sleep and the drain end (and the router exits) before the kubelet's SIGKILL
    assert 0 < 5 + float(grace) < pod["terminationGracePeriodSeconds"]


def test_the_replicas_service_and_route_lead_to_the_router_only() -> None:
    rendered = render(KIMI, ROUTER_IMAGE)
    service = named(rendered, "Service", "kimi-east-0")
    router_pod = named(rendered, "Deployment", "kimi-east-0-router")["spec"]["template"]
    assert service["spec"]["selector"] == {
        "modelplane.ai/replica": "kimi-east-0",
        "modelplane.ai/role": "Router",
    }
    assert service["spec"]["ports"][0]["targetPort"] == 8000
    assert service["spec"]["selector"].items() <= router_pod["metadata"]["labels"].items()
    for phase in ("prefill", "decode"):
        engine_pod = named(rendered, "Deployment", f"kimi-east-0-{phase}")["spec"]["template"]
        assert not service["spec"]["selector"].items() <= engine_pod["metadata"]["labels"].items()
    route = named(rendered, "HTTPRoute", "kimi-east-0")
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"kind": "Service", "name": "kimi-east-0", "port": 80}
    ]


def test_a_gang_phase_is_a_leaderworkerset_whose_service_selects_its_leaders() -> None:
    leader = member("Leader", "--model=kimi", gpu=HOPPER)
    worker = member("Worker", "--model=kimi", "--headless", gpu=HOPPER, worker={"nodes": 1})
    gang = {"name": "prefill", "phase": "Prefill", "members": [leader, worker]}
    rendered = render(pd(gang, DECODE))
    lws = named(rendered, "LeaderWorkerSet", "kimi-east-0-prefill")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    service = named(rendered, "Service", "kimi-east-0-prefill")
    assert service["spec"]["selector"]["modelplane.ai/serving"] == "true"
    worker_labels = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["metadata"]["labels"]
    assert "modelplane.ai/serving" not in worker_labels
    assert rendered.one_ready == {
        ("LeaderWorkerSet", "kimi-east-0-prefill"),
        ("Deployment", "kimi-east-0-decode"),
    }


def _phase(replica: Json, i: int, value: Any) -> Json:
    out = copy.deepcopy(replica)
    if value is None:
        out["spec"]["engines"][i].pop("phase", None)
    else:
        out["spec"]["engines"][i]["phase"] = value
    return out


def _only_prefill(replica: Json) -> Json:
    out = copy.deepcopy(replica)
    out["spec"]["engines"] = out["spec"]["engines"][:1]
    return out


def _named_router(replica: Json) -> Json:
    out = copy.deepcopy(replica)
    out["spec"]["engines"][1]["name"] = "router"
    return out


@pytest.mark.parametrize(
    ("name", "replica", "field", "message"),
    [
        ("two Prefill engines", _phase(KIMI, 1, "Prefill"), "spec.engines[1].phase",
         f"{REPLICA} spec.engines[1].phase: spec.engines[0] is already the Prefill engine; "
         "a PrefillDecode replica has one engine per phase"),
        ("an engine without a phase", _phase(KIMI, 0, None), "spec.engines[0].phase",
         f"{REPLICA} spec.engines[0].phase: None: each engine of a PrefillDecode replica is "
         "Prefill or Decode"),
        ("no Decode engine", _only_prefill(KIMI), "spec.engines",
         f"{REPLICA} spec.engines: a PrefillDecode replica needs a Decode engine; it has none"),
        ("an engine named router", _named_router(KIMI), "spec.engines[1].name",
         f"{REPLICA} spec.engines[1].name: 'router' is the router's; name the engine else"),
    ],
)  # fmt: skip
def test_what_cannot_be_rendered_names_the_field(
    name: str, replica: Json, field: str, message: str
) -> None:
    with pytest.raises(UnsupportedError) as raised:
        render(replica)
    assert raised.value.field == field
    assert str(raised.value) == message


# --- readiness ---------------------------------------------------------------------------

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.UTC)
CLUSTER: Json = {"metadata": {"name": "east"}, "status": {"gatewayAddress": "10.1.0.2"}}


def _observed(ready: dict[str, int]) -> Observed:
    """KIMI applied 30 s ago and seen on east, each workload with `ready` pods ready."""
    rendered = render(KIMI, ROUTER_IMAGE)
    remote = []
    for obj in rendered.objects[1:]:
        live = copy.deepcopy(obj)
        live["metadata"]["generation"] = 1
        if obj["kind"] == "Deployment":
            wanted = obj["spec"]["replicas"]
            live["status"] = {
                "observedGeneration": 1,
                "readyReplicas": ready[obj["metadata"]["name"]],
                "updatedReplicas": wanted,
            }
        remote.append(live)
    returned = tuple((o["kind"], o["metadata"]["name"], 1) for o in rendered.objects)
    generation = int(KIMI["metadata"].get("generation") or 0)
    applied = Applied(generation, NOW - datetime.timedelta(seconds=30), None, returned)
    return Observed(
        cluster=CLUSTER, remote=tuple(remote), applied=applied, router_image=ROUTER_IMAGE
    )


def test_one_prefill_pod_one_decode_pod_and_the_router_ready_is_enough_to_probe() -> None:
    seen = _observed({"kimi-east-0-prefill": 1, "kimi-east-0-decode": 1, "kimi-east-0-router": 1})
    decision = decide(KIMI, seen, NOW)
    assert decision.apply == ()
    assert decision.probe == "http://10.1.0.2/ml-team/kimi-east-0/health"


@pytest.mark.parametrize(
    ("name", "ready", "problem"),
    [
        ("no prefill pod", {"kimi-east-0-prefill": 0, "kimi-east-0-decode": 2,
                            "kimi-east-0-router": 1},
         "Deployment ml-team/kimi-east-0-prefill: none of 1 ready"),
        ("no decode pod", {"kimi-east-0-prefill": 1, "kimi-east-0-decode": 0,
                           "kimi-east-0-router": 1},
         "Deployment ml-team/kimi-east-0-decode: none of 2 ready"),
        ("no router", {"kimi-east-0-prefill": 1, "kimi-east-0-decode": 2,
                       "kimi-east-0-router": 0},
         "Deployment ml-team/kimi-east-0-router: 0 of 1 ready"),
    ],
)  # fmt: skip
def test_without_a_ready_pod_of_each_part_the_replica_is_not_ready(
    name: str, ready: dict[str, int], problem: str
) -> None:
    decision = decide(KIMI, _observed(ready), NOW)
    assert decision.probe is None
    assert decision.publish is None
    assert decision.status is not None
    (condition,) = [c for c in decision.status["conditions"] if c["type"] == "Ready"]
    assert condition["status"] == "False"
    assert condition["reason"] == "WorkloadNotReady"
    assert condition["message"] == problem


def test_the_router_image_comes_from_endpoint_managers_setting() -> None:
    decision = decide(KIMI, Observed(cluster=CLUSTER, router_image="other/image:1"), NOW)
    routers = [o for o in decision.apply if o["metadata"]["name"] == "kimi-east-0-router"]
    deployment = next(o for o in routers if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "other/image:1"


def test_each_phase_service_and_probe_target_the_port_its_engines_args_name() -> None:
    """The kimi-k2 recipe declares no containerPort: its decode engine says `--port=8001`
    in its args (the prefill engine `--port=8000`)."""
    prefill, decode = copy.deepcopy(PREFILL), copy.deepcopy(DECODE)
    for engine, flag in ((prefill, "--port=8000"), (decode, "--port=8001")):
        engine["members"][0]["template"]["spec"]["containers"][0]["args"].insert(1, flag)
    rendered = render(pd(prefill, decode))
    ports = {
        name: named(rendered, "Service", name)["spec"]["ports"][0]["targetPort"]
        for name in ("kimi-east-0-prefill", "kimi-east-0-decode", "kimi-east-0")
    }
    assert ports == {"kimi-east-0-prefill": 8000, "kimi-east-0-decode": 8001, "kimi-east-0": 8000}
    probes = {
        name: named(rendered, "Deployment", name)["spec"]["template"]["spec"]["containers"][0][
            "readinessProbe"
        ]["httpGet"]["port"]
        for name in ("kimi-east-0-prefill", "kimi-east-0-decode")
    }
    assert probes == {"kimi-east-0-prefill": 8000, "kimi-east-0-decode": 8001}


def test_a_port_flag_that_is_no_number_names_the_replica_the_engine_and_the_field() -> None:
    decode = copy.deepcopy(DECODE)
    decode["members"][0]["template"]["spec"]["containers"][0]["args"].append("--port=$(PORT)")
    with pytest.raises(UnsupportedError) as raised:
        render(pd(PREFILL, decode))
    assert raised.value.field == "spec.engines[1].members[0].template.spec.containers[0].args[2]"
    assert str(raised.value) == (
        f"{REPLICA} spec.engines[1].members[0].template.spec.containers[0].args[2]: engine "
        "decode: --port '$(PORT)' is not a port number (1-65535); write the number, or "
        "declare it as the container's containerPort"
    )
