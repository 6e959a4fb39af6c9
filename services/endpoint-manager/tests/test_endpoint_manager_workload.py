"""The objects endpoint-manager applies on an inference cluster for one ModelReplica (pure).

Replicas are made by the fleet-scheduler's own offline planner from
ModelDeployments on a fleet shaped like `e2e/fleet.yaml` (east: three one-L4
nodes in pool `l4`, two two-H100 nodes in pool `h100`), so inputs have exactly
the shape the API serves.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from endpoint_manager import workload
from endpoint_manager.workload import GATEWAY, Rendered, UnsupportedError, managed_labels, render
from modelplane.scheduling.offline import plan

Json = dict[str, Any]
IMAGE = "vllm/vllm-openai:v0.23.0"
ADA = 'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"'
HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
GPU = "modelplane-devices"

FLEET: list[Json] = [
    {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceClass", "metadata": {"name": "l4-single"},
     "spec": {"devices": [{"name": "gpu", "driver": "gpu.nvidia.com", "deviceClassName": "gpu.nvidia.com", "count": 1,
                           "attributes": {"architecture": {"string": "Ada Lovelace"}},
                           "capacity": {"memory": {"value": "23034Mi"}}}]}},
    {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceClass", "metadata": {"name": "h100-2x"},
     "spec": {"devices": [{"name": "gpu", "driver": "gpu.nvidia.com", "deviceClassName": "gpu.nvidia.com", "count": 2,
                           "attributes": {"architecture": {"string": "Hopper"}},
                           "capacity": {"memory": {"value": "81559Mi"}}}]}},
    {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
     "metadata": {"name": "east", "labels": {"modelplane.ai/region": "us-east"}},
     "spec": {"cluster": {"source": "Existing", "existing": {"secretRef": {"name": "east-kubeconfig"}}},
              "nodePools": [{"name": "l4", "className": "l4-single", "nodeCount": 3},
                            {"name": "h100", "className": "h100-2x", "nodeCount": 2}]}},
]  # fmt: skip


# --- builders ---------------------------------------------------------------------------


def container(*args: str, name: str = "engine", **extra: Any) -> Json:
    return {"name": name, "image": IMAGE, "args": list(args), **extra}


def member(
    role: str = "Standalone",
    *containers: Json,
    selector: str | None = ADA,
    count: int = 1,
    nodes: int | None = None,
    **template: Any,
) -> Json:
    """A ModelDeployment member; `template` adds to the pod template (`metadata=`, `spec=`)."""
    spec = {"containers": list(containers) or [container("--model=Qwen/Qwen3-8B")]}
    spec.update(template.pop("spec", {}))
    out: Json = {"role": role, "template": {**template, "spec": spec}}
    if selector is not None:
        out["nodeSelector"] = {
            "devices": [{"name": "gpu", "count": count, "selectors": [{"cel": selector}]}]
        }
    if nodes is not None:
        out["worker"] = {"nodes": nodes}
    return out


def engine(name: str, *members: Json, **extra: Any) -> Json:
    return {"name": name, "members": list(members) or [member()], **extra}


def deployment(*engines: Json, name: str = "qwen", **spec: Any) -> Json:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml-team", "uid": "u-1"},
        "spec": {"replicas": 1, "engines": list(engines) or [engine("qwen")], **spec},
    }


def scheduled(dep: Json) -> Json:
    """The one ModelReplica the fleet-scheduler creates for `dep` on the fleet."""
    result = plan([*FLEET, dep])
    assert not result.failed, result
    (report,) = result.deployments
    (replica,) = report.manifests
    return copy.deepcopy(replica)


def gang(*, worker_nodes: int = 2, copies: int = 1, worker_selector: str | None = ADA) -> Json:
    leader = member(
        "Leader", container("--model=tiny", "--master-addr=$(MODELPLANE_LEADER_ADDRESS)")
    )
    worker = member(
        "Worker",
        container("--model=tiny", "--headless"),
        nodes=worker_nodes,
        selector=worker_selector,
    )
    return scheduled(deployment(engine("coder", leader, worker, copies=copies), name="coder"))


def edited(replica: Json, change: Callable[[Json], None]) -> Json:
    """`replica` as a person might have hand-edited it: a copy with `change` applied."""
    out = copy.deepcopy(replica)
    change(out)
    return out


def first_member(replica: Json) -> Json:
    member: Json = replica["spec"]["engines"][0]["members"][0]
    return member


def one(rendered: Rendered, kind: str) -> Json:
    (found,) = [o for o in rendered.objects if o["kind"] == kind]
    return found


def all_of(rendered: Rendered, kind: str) -> list[Json]:
    return [o for o in rendered.objects if o["kind"] == kind]


def pod_template(rendered: Rendered) -> Json:
    template: Json = one(rendered, "Deployment")["spec"]["template"]
    return template


def engine_container(template: Json) -> Json:
    found: Json = next(c for c in template["spec"]["containers"] if c["name"] == "engine")
    return found


QWEN = scheduled(deployment())
QWEN_CLAIM = "qwen-east-0-qwen-ce0c9e24"  # owner, then a hash of the requests


# --- the whole output -------------------------------------------------------------------


def test_a_standalone_replica_renders_namespace_claim_deployment_service_and_route() -> None:
    labels = {
        "app.kubernetes.io/managed-by": "modelplane-endpoint-manager",
        "modelplane.ai/replica": "qwen-east-0",
        "modelplane.ai/deployment": "qwen",
    }
    meta = {"namespace": "ml-team", "labels": labels}
    assert QWEN["spec"]["engines"][0]["nodePoolName"] == "l4"
    assert render(QWEN) == Rendered(
        serving_service="qwen-east-0",
        path="/ml-team/qwen-east-0/",
        objects=(
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "ml-team", "labels": {"app.kubernetes.io/managed-by": "modelplane-endpoint-manager"}}},
            {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
             "metadata": {"name": QWEN_CLAIM, **meta},
             "spec": {"metadata": {"labels": labels}, "spec": {"devices": {"requests": [
                 {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount",
                                             "count": 1, "selectors": [{"cel": {"expression": ADA}}]}}]}}}},
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "qwen-east-0-qwen", "namespace": "ml-team", "labels": {**labels, "modelplane.ai/engine": "qwen"}},
             "spec": {
                 "replicas": 1,
                 "selector": {"matchLabels": {"modelplane.ai/replica": "qwen-east-0", "modelplane.ai/engine": "qwen"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                 "template": {
                     "metadata": {"labels": {**labels, "modelplane.ai/engine": "qwen", "modelplane.ai/role": "Standalone",
                                             "modelplane.ai/serving": "true"}},
                     "spec": {
                         "containers": [{
                             "name": "engine", "image": IMAGE, "args": ["--model=Qwen/Qwen3-8B"],
                             "resources": {"claims": [{"name": GPU}]},
                             "readinessProbe": {"httpGet": {"path": "/health", "port": 8000},
                                                "periodSeconds": 2, "failureThreshold": 3},
                         }],
                         "nodeSelector": {"modelplane.ai/pool": "l4"},
                         "resourceClaims": [{"name": GPU, "resourceClaimTemplateName": QWEN_CLAIM}],
                     },
                 },
             }},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "qwen-east-0", **meta},
             "spec": {"type": "ClusterIP",
                      "selector": {"modelplane.ai/replica": "qwen-east-0", "modelplane.ai/serving": "true"},
                      "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8000}]}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "qwen-east-0", **meta},
             "spec": {
                 "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                 "namespace": "modelplane-system", "name": "modelplane-inference"}],
                 "rules": [{
                     "matches": [{"path": {"type": "PathPrefix", "value": "/ml-team/qwen-east-0"}}],
                     "filters": [{"type": "URLRewrite",
                                  "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
                     "backendRefs": [{"kind": "Service", "name": "qwen-east-0", "port": 80}],
                 }],
             }},
        ),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "replica", "kinds"),
    [
        ("a standalone engine: namespace, claim, Deployment, Service, route", QWEN,
         ["Namespace", "ResourceClaimTemplate", "Deployment", "Service", "HTTPRoute"]),
        ("a gang: a claim per member before the LeaderWorkerSet", gang(),
         ["Namespace", "ResourceClaimTemplate", "ResourceClaimTemplate", "LeaderWorkerSet", "Service", "HTTPRoute"]),
        ("a gang whose workers claim nothing: one claim", gang(worker_selector=None),
         ["Namespace", "ResourceClaimTemplate", "LeaderWorkerSet", "Service", "HTTPRoute"]),
        ("two engines: both claims, then both workloads", scheduled(deployment(engine("a"), engine("b"))),
         ["Namespace", "ResourceClaimTemplate", "ResourceClaimTemplate", "Deployment", "Deployment", "Service", "HTTPRoute"]),
    ],
)  # fmt: skip
def test_objects_come_in_apply_order(name: str, replica: Json, kinds: list[str]) -> None:
    assert [o["kind"] for o in render(replica).objects] == kinds


# --- the template passes through --------------------------------------------------------


def test_the_users_template_passes_through_with_only_the_platforms_additions() -> None:
    sidecar = {"name": "metrics", "image": "prom/exporter:1", "ports": [{"containerPort": 9100}]}
    engine_c = container(
        "--model=Qwen/Qwen3-8B", "--served-model-name=qwen",
        command=["vllm", "serve"],
        env=[{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}],
        resources={"limits": {"memory": "32Gi"}, "claims": [{"name": "scratch"}]},
        volumeMounts=[{"name": "shm", "mountPath": "/dev/shm"}],
    )  # fmt: skip
    replica = scheduled(deployment(engine("qwen", member(
        "Standalone", sidecar, engine_c,
        metadata={"labels": {"team": "ml", "modelplane.ai/engine": "spoofed"},
                  "annotations": {"prometheus.io/scrape": "true"}},
        spec={"nodeSelector": {"disk": "nvme"}, "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
              "resourceClaims": [{"name": "scratch", "resourceClaimName": "tmp"}],
              "terminationGracePeriodSeconds": 30},
    ))))  # fmt: skip
    template = pod_template(render(replica))
    assert template["metadata"]["labels"] == {
        "team": "ml",
        "app.kubernetes.io/managed-by": "modelplane-endpoint-manager",
        "modelplane.ai/replica": "qwen-east-0",
        "modelplane.ai/deployment": "qwen",
        "modelplane.ai/engine": "qwen",
        "modelplane.ai/role": "Standalone",
        "modelplane.ai/serving": "true",
    }
    assert template["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    spec = template["spec"]
    assert spec["nodeSelector"] == {"disk": "nvme", "modelplane.ai/pool": "l4"}
    assert spec["volumes"] == [{"name": "shm", "emptyDir": {"medium": "Memory"}}]
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["resourceClaims"] == [
        {"name": "scratch", "resourceClaimName": "tmp"},
        {"name": GPU, "resourceClaimTemplateName": QWEN_CLAIM},
    ]
    assert spec["containers"] == [
        sidecar,
        {
            **engine_c,
            "resources": {"limits": {"memory": "32Gi"}, "claims": [{"name": "scratch"}, {"name": GPU}]},
            "readinessProbe": {"httpGet": {"path": "/health", "port": 8000},
                               "periodSeconds": 2, "failureThreshold": 3},
        },
    ]  # fmt: skip


def test_the_pool_pin_wins_over_a_users_pool_label() -> None:
    replica = scheduled(
        deployment(engine("qwen", member(spec={"nodeSelector": {"modelplane.ai/pool": "h100"}})))
    )
    assert pod_template(render(replica))["spec"]["nodeSelector"] == {"modelplane.ai/pool": "l4"}


def test_a_hopper_engine_is_pinned_to_the_pool_it_was_placed_on() -> None:
    replica = scheduled(deployment(engine("qwen", member(selector=HOPPER, count=2))))
    rendered = render(replica)
    assert pod_template(rendered)["spec"]["nodeSelector"] == {"modelplane.ai/pool": "h100"}
    request = one(rendered, "ResourceClaimTemplate")["spec"]["spec"]["devices"]["requests"][0]
    assert request["exactly"]["count"] == 2
    assert request["exactly"]["selectors"] == [{"cel": {"expression": HOPPER}}]


# --- device claims ----------------------------------------------------------------------


def _two_requests(replica: Json) -> None:
    first_member(replica)["deviceRequests"] = [
        {"name": "gpu", "count": 8, "deviceClassName": "gpu.nvidia.com",
         "selectors": [{"cel": "a"}, {"cel": "b"}]},
        {"name": "efa", "count": 16, "deviceClassName": "dra.net"},
    ]  # fmt: skip


def test_a_members_requests_become_one_claim_template_with_every_request() -> None:
    rendered = render(edited(QWEN, _two_requests))
    claim = one(rendered, "ResourceClaimTemplate")
    assert claim["spec"]["spec"]["devices"]["requests"] == [
        {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount",
                                    "count": 8, "selectors": [{"cel": {"expression": "a"}}, {"cel": {"expression": "b"}}]}},
        {"name": "efa", "exactly": {"deviceClassName": "dra.net", "allocationMode": "ExactCount", "count": 16}},
    ]  # fmt: skip
    template = pod_template(rendered)
    assert template["spec"]["resourceClaims"] == [
        {"name": GPU, "resourceClaimTemplateName": claim["metadata"]["name"]}
    ]
    assert engine_container(template)["resources"] == {"claims": [{"name": GPU}]}


def _more_gpus(replica: Json) -> None:
    first_member(replica)["deviceRequests"][0]["count"] = 2


def _other_selector(replica: Json) -> None:
    first_member(replica)["deviceRequests"][0]["selectors"] = [{"cel": HOPPER}]


def _other_args(replica: Json) -> None:
    first_member(replica)["template"]["spec"]["containers"][0]["args"] = ["--model=other"]


@pytest.mark.parametrize(
    ("name", "change", "renamed"),
    [
        ("more devices per pod: a new claim template", _more_gpus, True),
        ("another selector: a new claim template", _other_selector, True),
        ("an edited engine template keeps the claim template", _other_args, False),
    ],
)
def test_a_claim_template_is_immutable_so_changed_requests_give_it_a_new_name(
    name: str, change: Callable[[Json], None], renamed: bool
) -> None:
    rendered = render(edited(QWEN, change))
    claim = one(rendered, "ResourceClaimTemplate")["metadata"]["name"]
    assert (claim != QWEN_CLAIM) == renamed
    assert claim.startswith("qwen-east-0-qwen-")
    assert pod_template(rendered)["spec"]["resourceClaims"] == [
        {"name": GPU, "resourceClaimTemplateName": claim}
    ]


def _engine_not_first(replica: Json) -> None:
    containers = first_member(replica)["template"]["spec"]["containers"]
    containers.insert(0, {"name": "proxy", "image": "envoy:1", "ports": [{"containerPort": 9901}]})


def _no_engine_named(replica: Json) -> None:
    containers = first_member(replica)["template"]["spec"]["containers"]
    containers[0]["name"] = "vllm"
    containers.append({"name": "log", "image": "fluentbit:1"})


@pytest.mark.parametrize(
    ("name", "change", "claimed"),
    [
        ("the container named engine claims, wherever it is", _engine_not_first, "engine"),
        ("without a container named engine, the first one claims", _no_engine_named, "vllm"),
    ],
)
def test_only_the_engine_container_uses_the_claim(
    name: str, change: Callable[[Json], None], claimed: str
) -> None:
    containers = pod_template(render(edited(QWEN, change)))["spec"]["containers"]
    assert {c["name"]: "resources" in c for c in containers} == {
        c["name"]: c["name"] == claimed for c in containers
    }
    assert {c["name"]: "readinessProbe" in c for c in containers} == {
        c["name"]: c["name"] == claimed for c in containers
    }


def test_a_claim_the_user_already_wired_is_not_wired_twice() -> None:
    def wired(replica: Json) -> None:
        template = first_member(replica)["template"]
        template["spec"]["resourceClaims"] = [{"name": GPU, "resourceClaimTemplateName": "old"}]
        template["spec"]["containers"][0]["resources"] = {"claims": [{"name": GPU}]}

    template = pod_template(render(edited(QWEN, wired)))
    assert template["spec"]["resourceClaims"] == [
        {"name": GPU, "resourceClaimTemplateName": QWEN_CLAIM}
    ]
    assert engine_container(template)["resources"] == {"claims": [{"name": GPU}]}


def test_a_member_without_device_requests_claims_nothing() -> None:
    rendered = render(gang(worker_selector=None))
    (claim,) = all_of(rendered, "ResourceClaimTemplate")
    assert claim["metadata"]["name"] == "coder-east-0-coder-leader-ce0c9e24"
    worker = one(rendered, "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    assert "resourceClaims" not in worker["spec"]
    assert "resources" not in engine_container(worker)


# --- readiness probe and port -----------------------------------------------------------


def _with_engine(**fields: Any) -> Callable[[Json], None]:
    def change(replica: Json) -> None:
        first_member(replica)["template"]["spec"]["containers"][0].update(fields)

    return change


USER_PROBE = {"exec": {"command": ["true"]}, "periodSeconds": 7}


@pytest.mark.parametrize(
    ("name", "change", "port", "probe"),
    [
        ("no port and no probe: port 8000 and a /health probe on it", _with_engine(), 8000,
         {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 2, "failureThreshold": 3}),
        ("the engine container's first containerPort is the engine port", _with_engine(
            ports=[{"name": "http", "containerPort": 9000}, {"name": "metrics", "containerPort": 9090}]), 9000,
         {"httpGet": {"path": "/health", "port": 9000}, "periodSeconds": 2, "failureThreshold": 3}),
        ("a port on another container is not the engine's", _engine_not_first, 8000,
         {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 2, "failureThreshold": 3}),
        ("the user's own probe is kept as written", _with_engine(readinessProbe=USER_PROBE), 8000, USER_PROBE),
        ("a user probe and a port: the port still routes", _with_engine(
            readinessProbe=USER_PROBE, ports=[{"containerPort": 30000}]), 30000, USER_PROBE),
    ],
)  # fmt: skip
def test_engine_port_and_readiness_probe(
    name: str, change: Callable[[Json], None], port: int, probe: Json
) -> None:
    rendered = render(edited(QWEN, change))
    assert engine_container(pod_template(rendered))["readinessProbe"] == probe
    assert one(rendered, "Service")["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": port}
    ]


SGLANG_SCRIPT = (  # the docs' qwen3-coder FP8 recipe: the flag and its value as two words
    "exec python3 -m sglang.launch_server\n  --model-path /mnt/models\n  --tp 8\n"
    "  --host 0.0.0.0\n  --port 8000\n  --trust-remote-code"
)


@pytest.mark.parametrize(
    ("name", "fields", "port"),
    [
        ("vLLM's --port=N in args (the kimi-k2 recipe's decode engine)",
         {"args": ["--served-model-name=kimi-k2", "--port=8001", "--block-size=64"]}, 8001),
        ("--port N as two args (llama.cpp in the glm-4.5-air recipe)",
         {"args": ["-hf", "unsloth/GLM", "--host", "0.0.0.0", "--port", "8002", "-ngl", "999"]}, 8002),
        ("the flag in command", {"command": ["vllm", "serve", "m", "--port", "8003"], "args": []}, 8003),
        ("the last --port wins, as argparse takes it",
         {"args": ["--port=8004", "--model=m", "--port", "8005"]}, 8005),
        ("command then args: the one in args is later",
         {"command": ["vllm", "serve", "--port=8006"], "args": ["--port=8007"]}, 8007),
        ("inside sh -c, on its own line (the qwen3-coder SGLang recipe)",
         {"command": ["/bin/sh", "-c", SGLANG_SCRIPT], "args": []}, 8000),
        ("inside bash -c, the script in args, with --port=N before a `;`",
         {"command": ["bash", "-c"], "args": ["echo start; exec vllm serve m --port=8008; true"]}, 8008),
        ("a commented-out --port in a script is not read",
         {"command": ["sh", "-c", "exec vllm serve m --port 8009 # --port 9999"], "args": []}, 8009),
        ("a declared containerPort wins over --port",
         {"args": ["--port=8010"], "ports": [{"containerPort": 9010}]}, 9010),
        ("a look-alike flag is not --port", {"args": ["--port-range=9000", "--master-port=29500"]}, 8000),
    ],
)  # fmt: skip
def test_the_engine_port_is_read_from_the_engines_flags(name: str, fields: Json, port: int) -> None:
    rendered = render(edited(QWEN, _with_engine(**fields)))
    probe = engine_container(pod_template(rendered))["readinessProbe"]
    assert probe["httpGet"] == {"path": "/health", "port": port}
    assert one(rendered, "Service")["spec"]["ports"][0]["targetPort"] == port


@pytest.mark.parametrize(
    ("name", "fields", "field", "value"),
    [
        ("a Kubernetes $(VAR)", {"args": ["--port=$(ENGINE_PORT)"]}, "args[0]", "$(ENGINE_PORT)"),
        ("a shell variable in a script", {"command": ["sh", "-c", "exec vllm serve m --port $PORT"]},
         "command[2]", "$PORT"),
        ("past 65535", {"args": ["--port", "70000"]}, "args[1]", "70000"),
        ("zero", {"args": ["--port=0"]}, "args[0]", "0"),
        ("no value at all", {"args": ["--model=m", "--port"]}, "args[1]", ""),
    ],
)  # fmt: skip
def test_a_port_flag_that_is_no_port_number_is_refused_naming_the_field(
    name: str, fields: Json, field: str, value: str
) -> None:
    at = f"spec.engines[0].members[0].template.spec.containers[0].{field}"
    with pytest.raises(UnsupportedError) as raised:
        render(edited(QWEN, _with_engine(**fields)))
    assert raised.value.field == at
    assert str(raised.value) == (
        f"ModelReplica ml-team/qwen-east-0 {at}: engine qwen: --port {value!r} is not a port "
        "number (1-65535); write the number, or declare it as the container's containerPort"
    )


def test_the_engine_containers_own_index_is_named_when_it_is_not_first() -> None:
    def sidecar_first(replica: Json) -> None:
        containers = first_member(replica)["template"]["spec"]["containers"]
        containers[0]["args"].append("--port=http")
        containers.insert(0, {"name": "proxy", "image": "envoy:1", "args": ["--port=$(X)"]})

    with pytest.raises(UnsupportedError) as raised:
        render(edited(QWEN, sidecar_first))
    assert raised.value.field == "spec.engines[0].members[0].template.spec.containers[1].args[1]"


# --- names and labels -------------------------------------------------------------------

LONG = "a-very-long-model-deployment-name-that-keeps-going"


def test_long_names_are_shortened_deterministically_and_stay_distinct() -> None:
    replica = scheduled(
        deployment(engine("prefill-and-decode-together"), engine("second-engine"), name=LONG)
    )
    first, again = render(replica), render(copy.deepcopy(replica))
    assert first == again
    names = [(o["kind"], o["metadata"]["name"]) for o in first.objects]
    assert all(len(n) <= 63 for _, n in names), names
    assert len(set(names)) == len(names)
    workloads = [n for k, n in names if k == "Deployment"]
    assert workloads == [
        workload.object_name(replica["metadata"]["name"], "prefill-and-decode-together"),
        workload.object_name(replica["metadata"]["name"], "second-engine"),
    ]
    assert all(n.startswith("a-very-long-model-deployment-name") for n in workloads)
    assert workloads[0] != workloads[1]


def test_a_leaderworkerset_name_leaves_room_for_its_statefulsets_revision_label() -> None:
    replica = scheduled(deployment(engine(
        "a-gang-engine-with-a-long-name",
        member("Leader"), member("Worker", nodes=1),
    ), name=LONG))  # fmt: skip
    name = one(render(replica), "LeaderWorkerSet")["metadata"]["name"]
    assert len(name) <= workload.LWS_NAME_MAX
    # worker StatefulSet `<lws>-1023`, its revision label `<that>-<10 characters>`
    assert len(f"{name}-1023-0123456789") <= 63


@pytest.mark.parametrize(
    ("name", "parts", "expected"),
    [
        ("short parts join with a dash", ("qwen-east-0", "qwen"), "qwen-east-0-qwen"),
        ("dots become dashes", ("qwen3.5-east-0",), "qwen3-5-east-0"),
        ("a name must start with a letter", ("8b-east-0",), "m-8b-east-0"),
        ("a long name keeps a prefix and a stable hash", ("x" * 70,), "x" * 54 + "-c71bd109"),
    ],
)
def test_object_names(name: str, parts: tuple[str, ...], expected: str) -> None:
    assert workload.object_name(*parts) == expected


def _long_hand_written_name(replica: Json) -> None:
    replica["metadata"]["name"] = "r" * 100
    replica["spec"]["deploymentName"] = "d" * 100


def test_label_values_fit_63_characters_even_for_hand_written_long_names() -> None:
    rendered = render(edited(QWEN, _long_hand_written_name))
    labels = [o["metadata"]["labels"] for o in rendered.objects]
    labels.append(pod_template(rendered)["metadata"]["labels"])
    assert all(len(v) <= 63 for ls in labels for v in ls.values())
    assert rendered.path == f"/ml-team/{'r' * 100}/"
    assert len(rendered.serving_service) <= 63


@pytest.mark.parametrize(
    ("name", "replica"),
    [("standalone", QWEN), ("gang", gang()), ("hand-written long names", edited(QWEN, _long_hand_written_name))],
)  # fmt: skip
def test_every_namespaced_object_and_pod_carries_the_managed_labels(
    name: str, replica: Json
) -> None:
    wanted = managed_labels(replica)
    assert set(wanted) == {
        "app.kubernetes.io/managed-by",
        "modelplane.ai/replica",
        "modelplane.ai/deployment",
    }
    rendered = render(replica)
    namespace, *owned = rendered.objects
    assert namespace["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "modelplane-endpoint-manager"
    }
    templates = [o["spec"]["template"] for o in all_of(rendered, "Deployment")]
    for lws in all_of(rendered, "LeaderWorkerSet"):
        templates += [
            lws["spec"]["leaderWorkerTemplate"][k] for k in ("leaderTemplate", "workerTemplate")
        ]
    templates += [o["spec"] for o in all_of(rendered, "ResourceClaimTemplate")]
    for labelled in [*(o["metadata"] for o in owned), *(t["metadata"] for t in templates)]:
        assert wanted.items() <= labelled["labels"].items(), labelled
        assert labelled.get("namespace", "ml-team") == "ml-team"


def test_managed_labels_fall_back_to_the_deployment_label_of_a_hand_written_replica() -> None:
    replica = edited(QWEN, lambda r: r["spec"].pop("deploymentName"))
    assert managed_labels(replica)["modelplane.ai/deployment"] == "qwen"
    del replica["metadata"]["labels"]
    assert managed_labels(replica) == {
        "app.kubernetes.io/managed-by": "modelplane-endpoint-manager",
        "modelplane.ai/replica": "qwen-east-0",
    }


# --- the route --------------------------------------------------------------------------


def test_the_route_attaches_to_the_clusters_gateway_and_strips_the_replica_prefix() -> None:
    rendered = render(QWEN)
    route = one(rendered, "HTTPRoute")
    assert GATEWAY == ("modelplane-system", "modelplane-inference")
    assert [(p["namespace"], p["name"]) for p in route["spec"]["parentRefs"]] == [GATEWAY]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/ml-team/qwen-east-0"}}]
    assert rule["filters"] == [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }
    ]
    assert rule["backendRefs"] == [
        {"kind": "Service", "name": rendered.serving_service, "port": 80}
    ]
    assert rendered.path == "/ml-team/qwen-east-0/"
    assert one(rendered, "Service")["metadata"]["name"] == rendered.serving_service


# --- gangs ------------------------------------------------------------------------------


def test_a_gang_becomes_a_leaderworkerset_of_copies_groups_of_leader_plus_workers() -> None:
    replica = gang(worker_nodes=2, copies=1)
    lws = one(render(replica), "LeaderWorkerSet")
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    assert lws["metadata"]["name"] == "coder-east-0-coder"
    assert lws["spec"]["replicas"] == 1
    group = lws["spec"]["leaderWorkerTemplate"]
    assert group["size"] == 3
    leader, worker = group["leaderTemplate"], group["workerTemplate"]
    leader_address = {"name": "MODELPLANE_LEADER_ADDRESS", "value": "$(LWS_LEADER_ADDRESS)"}
    assert leader == {
        "metadata": {"labels": {**managed_labels(replica), "modelplane.ai/engine": "coder",
                                "modelplane.ai/role": "Leader", "modelplane.ai/serving": "true"}},
        "spec": {
            "containers": [{
                "name": "engine", "image": IMAGE, "args": ["--model=tiny", "--master-addr=$(MODELPLANE_LEADER_ADDRESS)"],
                "resources": {"claims": [{"name": GPU}]},
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 2, "failureThreshold": 3},
                "env": [leader_address],
            }],
            "nodeSelector": {"modelplane.ai/pool": "l4"},
            "resourceClaims": [{"name": GPU, "resourceClaimTemplateName": "coder-east-0-coder-leader-ce0c9e24"}],
        },
    }  # fmt: skip
    assert worker == {
        "metadata": {"labels": {**managed_labels(replica), "modelplane.ai/engine": "coder",
                                "modelplane.ai/role": "Worker"}},
        "spec": {
            "containers": [{
                "name": "engine", "image": IMAGE, "args": ["--model=tiny", "--headless"],
                "resources": {"claims": [{"name": GPU}]},
                "env": [leader_address],
            }],
            "nodeSelector": {"modelplane.ai/pool": "l4"},
            "resourceClaims": [{"name": GPU, "resourceClaimTemplateName": "coder-east-0-coder-worker-ce0c9e24"}],
        },
    }  # fmt: skip


def test_gang_copies_are_leaderworkerset_replicas() -> None:
    replica = scheduled(deployment(engine(
        "coder", member("Leader", selector=HOPPER), member("Worker", selector=HOPPER, nodes=1), copies=1,
    ), name="coder"))  # fmt: skip
    replica["spec"]["engines"][0]["copies"] = 3
    assert one(render(replica), "LeaderWorkerSet")["spec"]["replicas"] == 3


def test_the_service_selects_standalone_pods_and_gang_leaders_only() -> None:
    rendered = render(gang())
    selector = one(rendered, "Service")["spec"]["selector"]
    group = one(rendered, "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    leader_labels = group["leaderTemplate"]["metadata"]["labels"]
    worker_labels = group["workerTemplate"]["metadata"]["labels"]
    assert selector.items() <= leader_labels.items()
    assert not selector.items() <= worker_labels.items()
    standalone = render(QWEN)
    assert one(standalone, "Service")["spec"]["selector"].items() <= (
        pod_template(standalone)["metadata"]["labels"].items()
    )


def test_the_leader_address_goes_first_in_every_container_and_is_never_duplicated() -> None:
    def users_env(replica: Json) -> None:
        leader, worker = replica["spec"]["engines"][0]["members"]
        spec = worker["template"]["spec"]
        spec["containers"][0]["env"] = [
            {"name": "MASTER", "value": "$(MODELPLANE_LEADER_ADDRESS):29500"}
        ]
        spec["initContainers"] = [{"name": "wait", "image": "busybox"}]
        leader["template"]["spec"]["containers"][0]["env"] = [
            {"name": "MODELPLANE_LEADER_ADDRESS", "value": "set-by-user"}
        ]

    group = one(render(edited(gang(), users_env)), "LeaderWorkerSet")["spec"][
        "leaderWorkerTemplate"
    ]
    injected = {"name": "MODELPLANE_LEADER_ADDRESS", "value": "$(LWS_LEADER_ADDRESS)"}
    worker = group["workerTemplate"]["spec"]
    assert worker["containers"][0]["env"] == [
        injected,
        {"name": "MASTER", "value": "$(MODELPLANE_LEADER_ADDRESS):29500"},
    ]
    assert worker["initContainers"] == [{"name": "wait", "image": "busybox", "env": [injected]}]
    assert group["leaderTemplate"]["spec"]["containers"][0]["env"] == [
        {"name": "MODELPLANE_LEADER_ADDRESS", "value": "set-by-user"}
    ]


def test_a_standalone_pod_gets_no_leader_address() -> None:
    assert "env" not in engine_container(pod_template(render(QWEN)))


# --- several engines, copies ------------------------------------------------------------


def test_copies_are_deployment_replicas() -> None:
    replica = scheduled(deployment(engine("qwen", member(), copies=2)))
    assert one(render(replica), "Deployment")["spec"]["replicas"] == 2


def test_two_unified_engines_get_a_deployment_each_behind_one_service() -> None:
    rendered = render(
        scheduled(deployment(engine("small"), engine("big", member(selector=HOPPER))))
    )
    deployments = all_of(rendered, "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == ["qwen-east-0-small", "qwen-east-0-big"]
    assert [d["spec"]["template"]["spec"]["nodeSelector"] for d in deployments] == [
        {"modelplane.ai/pool": "l4"}, {"modelplane.ai/pool": "h100"},
    ]  # fmt: skip
    selector = one(rendered, "Service")["spec"]["selector"]
    assert all(
        selector.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in deployments
    )
    selectors = [d["spec"]["selector"]["matchLabels"] for d in deployments]
    assert selectors[0] != selectors[1]


# --- what is not supported --------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Json], None]:
    def change(replica: Json) -> None:
        *parents, last = path.split(".")
        node = replica
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _second_worker(replica: Json) -> None:
    members = replica["spec"]["engines"][0]["members"]
    members.append(copy.deepcopy(members[1]))


def _no_pool(replica: Json) -> None:
    del first_member(replica)["nodePoolName"], replica["spec"]["engines"][0]["nodePoolName"]


REPLICA = "ModelReplica ml-team/qwen-east-0"
M0 = "spec.engines.0.members.0"


@pytest.mark.parametrize(
    ("name", "replica", "field", "message"),
    [
        ("an unknown serving mode", edited(QWEN, _set("spec.serving", {"mode": "Speculative"})),
         "spec.serving.mode",
         f"{REPLICA} spec.serving.mode: Speculative serving is not supported; use Unified or PrefillDecode"),
        ("two Worker members do not fit one worker template", edited(gang(), _second_worker),
         "spec.engines[0].members",
         "ModelReplica ml-team/coder-east-0 spec.engines[0].members: roles ['Leader', 'Worker', 'Worker'] are not "
         "supported: an engine is one Standalone member, or one Leader and one Worker member (a LeaderWorkerSet has "
         "a single worker template)"),
        ("a Worker without worker.nodes", edited(gang(), _set("spec.engines.0.members.1.worker", {})),
         "spec.engines[0].members[1].worker.nodes",
         "ModelReplica ml-team/coder-east-0 spec.engines[0].members[1].worker.nodes: a Worker member needs worker.nodes >= 1"),
        ("no engines", edited(QWEN, _set("spec.engines", [])), "spec.engines",
         f"{REPLICA} spec.engines: a replica needs at least one engine"),
        ("a member pinned to no pool", edited(QWEN, _no_pool),
         "spec.engines[0].members[0].nodePoolName",
         f"{REPLICA} spec.engines[0].members[0].nodePoolName: the member is not pinned to a node pool"),
        ("a template without containers", edited(QWEN, _set(f"{M0}.template", {"spec": {"containers": []}})),
         "spec.engines[0].members[0].template.spec.containers",
         f"{REPLICA} spec.engines[0].members[0].template.spec.containers: the pod template has no container"),
        ("a device request without a DeviceClass", edited(QWEN, lambda r: first_member(r)["deviceRequests"][0].pop("deviceClassName")),
         "spec.engines[0].members[0].deviceRequests[0].deviceClassName",
         f"{REPLICA} spec.engines[0].members[0].deviceRequests[0].deviceClassName: a device request needs its DeviceClass"),
        ("two engines serving on different ports", scheduled(deployment(
            engine("a"), engine("b", member("Standalone", container(ports=[{"containerPort": 9000}])))),),
         "spec.engines[1].members[0].template.spec.containers",
         f"{REPLICA} spec.engines[1].members[0].template.spec.containers: the engine serves on port 9000 but "
         "engine a serves on 8000; every engine of a Unified replica serves on one port"),
        ("a gang's leader on another port, named where it is", scheduled(deployment(
            engine("a"), engine("b", member("Worker", nodes=1), member("Leader", container(ports=[{"containerPort": 9000}]))))),
         "spec.engines[1].members[1].template.spec.containers",
         f"{REPLICA} spec.engines[1].members[1].template.spec.containers: the engine serves on port 9000 but "
         "engine a serves on 8000; every engine of a Unified replica serves on one port"),
    ],
)  # fmt: skip
def test_what_cannot_be_rendered_names_the_replica_and_the_field(
    name: str, replica: Json, field: str, message: str
) -> None:
    with pytest.raises(UnsupportedError) as raised:
        render(replica)
    assert raised.value.field == field
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


# --- purity -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "replica"), [("standalone", QWEN), ("gang", gang())])
def test_the_input_is_never_mutated_nor_shared_with_the_output(name: str, replica: Json) -> None:
    before = copy.deepcopy(replica)
    rendered = render(replica)
    assert replica == before
    for obj in rendered.objects:  # scribble over every output: the input stays as it was
        _scribble(obj)
    assert replica == before
    assert render(replica) == render(before)


def _scribble(node: Any) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _scribble(value)
        node["scribbled"] = True
    elif isinstance(node, list):
        for value in node:
            _scribble(value)
        node.append("scribbled")


CACHE_VOLUME = {
    "name": "modelplane-cache",
    "persistentVolumeClaim": {"claimName": "modelcache-coder-weights", "readOnly": True},
}
CACHE_MOUNT = {"name": "modelplane-cache", "mountPath": "/mnt/models", "readOnly": True}


def test_a_cache_reference_mounts_its_claim_read_only_in_every_container_of_a_gang() -> None:
    cached = edited(gang(), _set("spec.modelCacheRef", {"name": "coder-weights"}))
    lws = next(o for o in render(cached).objects if o["kind"] == "LeaderWorkerSet")
    group = lws["spec"]["leaderWorkerTemplate"]
    for template in (group["leaderTemplate"], group["workerTemplate"]):
        assert template["spec"]["volumes"] == [CACHE_VOLUME]
        for container in template["spec"]["containers"]:
            assert container["volumeMounts"] == [CACHE_MOUNT]


def test_a_cache_mount_replaces_a_users_volume_at_mnt_models_and_keeps_the_others() -> None:
    def own_mounts(replica: Json) -> None:
        replica["spec"]["modelCacheRef"] = {"name": "coder-weights"}
        spec = first_member(replica)["template"]["spec"]
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        spec["containers"][0]["volumeMounts"] = [
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "scratch", "mountPath": "/mnt/models"},
        ]

    deployment = next(
        o for o in render(edited(QWEN, own_mounts)).objects if o["kind"] == "Deployment"
    )
    spec = deployment["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "scratch", "emptyDir": {}}, CACHE_VOLUME]
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "scratch", "mountPath": "/tmp"},
        CACHE_MOUNT,
    ]
