"""FleetScheduler over a real loopback channel: Schedule, Explain, health and status codes.

The service is started in-process on an ephemeral port over the fleet in ``fleet/``
(east: one L4 node; west: two T4 nodes; ml-team/chat wants two >=20Gi GPUs). What the
service answers is compared with placements written out here by hand from the rules
("How it schedules"), never with the function the service wraps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from fleet_scheduler.server import register
from fleet_scheduler.snapshot import StaticSnapshot
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modelplane.grpcutil import GrpcServer, dial, start_server
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2 as pb
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2_grpc as pb_grpc
from modelplane.proto.placement import SERVICE_NAME

FLEET = Path(__file__).parent / "fleet"
TIMEOUT = 20.0

NORTH = """
apiVersion: modelplane.ai/v1alpha1
kind: InferenceCluster
metadata: {name: north}
spec:
  cluster: {source: Existing, existing: {secretRef: {name: north-kubeconfig}}}
  nodePools: [{name: l4-pool, className: l4, nodeCount: 1}]
"""


def deployment(name: str, replicas: int, namespace: str = "ml-team") -> dict[str, Any]:
    """A ModelDeployment of one Standalone member that needs a >=20Gi GPU."""
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "engines": [
                {
                    "name": name,
                    "members": [
                        {
                            "role": "Standalone",
                            "nodeSelector": {
                                "devices": [
                                    {
                                        "name": "gpu",
                                        "count": 1,
                                        "selectors": [
                                            {
                                                "cel": 'device.capacity["gpu.nvidia.com"].memory'
                                                '.compareTo(quantity("20Gi")) >= 0'
                                            }
                                        ],
                                    }
                                ]
                            },
                            "template": {
                                "spec": {"containers": [{"name": "engine", "image": "vllm:x"}]}
                            },
                        }
                    ],
                }
            ],
        },
    }


def new_replica(index: int, cluster: str, eligible: int) -> pb.ReplicaPlacement:
    """A new replica of ml-team/chat on ``cluster``'s one-node l4-pool, which was empty."""
    return pb.ReplicaPlacement(
        index=index,
        cluster=cluster,
        engines={"chat": "l4-pool"},
        retained=False,
        why=f"placed on {cluster}: it hosted the fewest replicas of this deployment (0) among "
        f'{eligible} eligible clusters; engine "chat" on pool l4-pool (1 of 1 free nodes)',
        name=f"chat-{cluster}-{index}",
    )


WEST_TOO_SMALL = (
    'west: no pool satisfies engine "chat": device "gpu" matched no device (selector 1)'
)
# The observed fleet alone: one replica on east's only L4; west's T4s are too small.
OBSERVED_CHAT = pb.DeploymentPlacement(
    namespace="ml-team",
    name="chat",
    desired_replicas=2,
    replicas=[new_replica(0, "east", eligible=1)],
    unscheduled=1,
    reasons=["east: pool l4-pool has 0 of 1 needed nodes free", WEST_TOO_SMALL],
)


@pytest.fixture(scope="module")
def server() -> Iterator[GrpcServer]:
    running = start_server("127.0.0.1:0", register(StaticSnapshot.load([FLEET])), [SERVICE_NAME])
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def channel(server: GrpcServer) -> Iterator[Any]:
    with dial(server.address, services=[SERVICE_NAME], deadline_s=TIMEOUT) as ch:
        yield ch


@pytest.fixture
def stub(channel: Any) -> pb_grpc.FleetSchedulerStub:
    return pb_grpc.FleetSchedulerStub(channel)


def schedule(stub: pb_grpc.FleetSchedulerStub, *manifests: str, only: bool = False) -> Any:
    request = pb.ScheduleRequest(manifests=list(manifests), only_given_deployments=only)
    return stub.Schedule(request, timeout=TIMEOUT)


def failure_of(call: Any) -> tuple[Any, str]:
    with pytest.raises(grpc.RpcError) as failure:
        call()
    return failure.value.code(), failure.value.details()


def test_health_says_serving_for_the_service_and_the_whole_server(channel: Any) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    statuses = {
        name: health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT).status
        for name in ["", SERVICE_NAME]
    }
    serving = health_pb2.HealthCheckResponse.SERVING
    assert statuses == {"": serving, "modelplane.fleetscheduler.v1.FleetScheduler": serving}


def test_schedule_without_manifests_places_the_observed_fleet(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    response = schedule(stub)
    assert list(response.deployments) == [OBSERVED_CHAT]
    assert list(response.problems) == []


def test_a_given_cluster_adds_capacity_for_the_observed_deployment(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    response = schedule(stub, NORTH)
    assert list(response.deployments) == [
        pb.DeploymentPlacement(
            namespace="ml-team",
            name="chat",
            desired_replicas=2,
            replicas=[new_replica(0, "east", eligible=2), new_replica(1, "north", eligible=2)],
        )
    ]


def test_a_given_deployment_replaces_the_observed_one_in_place(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    response = schedule(stub, yaml.safe_dump(deployment("chat", 1)))
    assert [(d.name, d.desired_replicas, d.unscheduled) for d in response.deployments] == [
        ("chat", 1, 0)
    ]


def test_new_deployments_follow_the_observed_ones_and_see_what_they_took(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    response = schedule(stub, json.dumps(deployment("embed", 1)))
    assert [(d.name, len(d.replicas), d.unscheduled) for d in response.deployments] == [
        ("chat", 1, 1),
        ("embed", 0, 1),
    ]


def test_only_given_deployments_leaves_the_fleets_own_deployments_out(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    response = schedule(stub, json.dumps(deployment("embed", 1)), only=True)
    assert [(d.name, [r.cluster for r in d.replicas]) for d in response.deployments] == [
        ("embed", ["east"])
    ]


def test_several_documents_in_one_text_and_across_texts_are_all_read(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    two = yaml.safe_dump_all([deployment("a", 1), deployment("b", 1)])
    response = schedule(stub, two, NORTH, only=True)
    assert [(d.name, [r.cluster for r in d.replicas]) for d in response.deployments] == [
        ("a", ["east"]),
        ("b", ["north"]),
    ]


def test_an_invalid_given_deployment_is_reported_in_the_answer_not_as_an_rpc_error(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    broken = deployment("broken", 1)
    broken["spec"]["engines"][0]["members"][0]["nodeSelector"]["devices"][0]["selectors"] = [
        {"cel": "device.capacity[nope"}
    ]
    response = schedule(stub, yaml.safe_dump(broken), only=True)
    (placement,) = response.deployments
    assert placement.name == "broken"
    assert placement.error.startswith(
        "ModelDeployment ml-team/broken: spec.engines[0].members[0].nodeSelector.devices[0]"
        '.selectors[0].cel: invalid selector of engine "broken" member 0 (Standalone) device "gpu": '
    )
    assert (list(placement.replicas), placement.unscheduled) == ([], 1)


@pytest.mark.parametrize(
    ("manifests", "message"),
    [
        (
            [NORTH, "kind: [unclosed"],
            "manifests[1] (document 0): malformed YAML",
        ),
        (
            [NORTH + "---\n- just\n- a list\n"],
            "manifests[0] (document 1): a document must be an object, not list",
        ),
        (
            ['{"kind": "ModelDeployment", '],
            "manifests[0] (document 0): malformed YAML",
        ),
        (
            [NORTH.replace("nodeCount: 1", "nodeCount: -1")],
            "manifests[0] (document 0): InferenceCluster north: spec.nodePools[0].nodeCount",
        ),
        (
            [NORTH, NORTH],
            "manifests[1] (document 0): InferenceCluster north is also given at "
            "manifests[0] (document 0)",
        ),
    ],
    ids=[
        "YAML that does not parse",
        "a document that is not an object",
        "JSON that does not parse",
        "an invalid cluster",
        "the same object given twice",
    ],
)
def test_bad_manifests_are_invalid_argument_naming_the_document(
    stub: pb_grpc.FleetSchedulerStub, manifests: list[str], message: str
) -> None:
    code, details = failure_of(lambda: schedule(stub, *manifests))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in details


def test_explain_answers_the_placement_schedule_computes(
    stub: pb_grpc.FleetSchedulerStub,
) -> None:
    response = stub.Explain(pb.ExplainRequest(namespace="ml-team", name="chat"), timeout=TIMEOUT)
    assert response.deployment == OBSERVED_CHAT


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (
            pb.ExplainRequest(namespace="ml-team", name="nope"),
            grpc.StatusCode.NOT_FOUND,
            "ModelDeployment ml-team/nope is not in the observed fleet",
        ),
        (
            pb.ExplainRequest(name="chat"),
            grpc.StatusCode.NOT_FOUND,
            "ModelDeployment default/chat is not in the observed fleet",
        ),
        (
            pb.ExplainRequest(namespace="ml-team"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "name is required",
        ),
    ],
    ids=["an unknown name", "an empty namespace means default", "no name"],
)
def test_explain_errors(
    stub: pb_grpc.FleetSchedulerStub, request_: Any, code: Any, message: str
) -> None:
    assert failure_of(lambda: stub.Explain(request_, timeout=TIMEOUT)) == (code, message)
