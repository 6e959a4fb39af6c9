"""ModelDeployment status from a placement: counts, selector and conditions, as whole dicts."""

from __future__ import annotations

from typing import Any

from modelplane.scheduling import schedule_all
from modelplane.scheduling.status import deployment_status

from tests.scheduling.builders import (
    cluster,
    deployment,
    engine,
    fleet,
    gpu,
    hw,
    member,
    pool,
    replica,
    request,
)

L4 = hw("l4", gpu("23034Mi"))
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-02T00:00:00Z"


def status_of(
    placement_args: tuple[Any, ...],
    ready: set[tuple[str, str]],
    previous: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    (placement,) = schedule_all(*placement_args)
    return deployment_status(
        placement, generation=3, ready_replicas=ready, previous_conditions=previous or [], now=T1
    )


def test_a_partial_shortfall_says_how_many_are_missing_and_why() -> None:
    status = status_of(
        ([deployment("d", replicas=3)], fleet([cluster("a", pool("p", "l4", 2))], [L4])),
        {("ml-team", "d-a-0")},
    )
    assert status == {
        "desiredReplicas": 3,
        "replicas": 2,
        "readyReplicas": 1,
        "selector": "modelplane.ai/deployment=d",
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "ReplicasNotReady",
                "message": "1 of 3 ready",
                "observedGeneration": 3,
                "lastTransitionTime": T1,
            },
            {
                "type": "Scheduled",
                "status": "False",
                "reason": "ReplicasUnschedulable",
                "message": "1 of 3 replicas fit nowhere: a: pool p has 0 of 1 needed nodes free",
                "observedGeneration": 3,
                "lastTransitionTime": T1,
            },
        ],
    }


def test_an_unchanged_condition_keeps_its_transition_time_and_other_writers_conditions_stay() -> (
    None
):
    previous: list[dict] = [  # type: ignore[type-arg]
        {
            "type": "Scheduled",
            "status": "True",
            "reason": "AllReplicasPlaced",
            "message": "old",
            "observedGeneration": 2,
            "lastTransitionTime": T0,
        },
        {
            "type": "Ready",
            "status": "False",
            "reason": "ReplicasNotReady",
            "message": "0 of 1 ready",
            "observedGeneration": 2,
            "lastTransitionTime": T0,
        },
        {
            "type": "Synced",
            "status": "True",
            "reason": "Other",
            "message": "",
            "lastTransitionTime": T0,
        },
    ]
    status = status_of(
        ([deployment("d")], fleet([cluster("a", pool("p", "l4"))], [L4])),
        {("ml-team", "d-a-0")},
        previous,
    )
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Scheduled"]["lastTransitionTime"] == T0
    assert by_type["Scheduled"]["message"] == "1 of 1 replicas placed"
    assert by_type["Ready"] == {
        "type": "Ready",
        "status": "True",
        "reason": "AllReplicasReady",
        "message": "1 of 1 ready",
        "observedGeneration": 3,
        "lastTransitionTime": T1,
    }
    assert by_type["Synced"] == previous[2]


def test_a_bad_selector_is_a_condition_naming_the_field_and_placed_replicas_are_counted() -> None:
    bad = deployment("d", engine("e", member("Standalone", request("gpu", 1, "device.capacity["))))
    f = fleet([cluster("a", pool("p", "l4"))], [L4], [replica("d", 0, "a", ("e", "p", 1))])
    status = status_of(([bad], f), set())
    scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
    assert status["replicas"] == 1
    assert scheduled["status"] == "False"
    assert scheduled["reason"] == "InvalidSelector"
    assert scheduled["message"].startswith(
        "ModelDeployment ml-team/d: spec.engines[0].members[0].nodeSelector.devices[0]"
        '.selectors[0].cel: invalid selector of engine "e" member 0 (Standalone) device "gpu": '
    )
    assert scheduled["message"].endswith("the 1 placed replicas are kept as they are")


def test_scaled_to_zero_is_ready() -> None:
    status = status_of(
        ([deployment("d", replicas=0)], fleet([cluster("a", pool("p", "l4"))], [L4])), set()
    )
    assert (status["replicas"], status["readyReplicas"], status["desiredReplicas"]) == (0, 0, 0)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Ready", "True", "ScaledToZero"),
        ("Scheduled", "True", "AllReplicasPlaced"),
    ]


def test_many_failing_clusters_are_summarised() -> None:
    clusters = [cluster(f"c{i}", pool("p", "l4", 0)) for i in range(8)]
    status = status_of(([deployment("d")], fleet(clusters, [L4])), set())
    scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
    assert scheduled["message"].endswith("; and 3 more clusters")


def test_a_ready_replica_of_the_same_name_in_another_namespace_does_not_count() -> None:
    f = fleet([cluster("a", pool("p", "l4", 2))], [L4])
    mine, theirs = schedule_all(
        [deployment("d", namespace="team-a"), deployment("d", namespace="team-b")], f
    )
    assert [r.name for r in mine.replicas] == [r.name for r in theirs.replicas] == ["d-a-0"]
    ready = {("team-a", "d-a-0")}
    counts = [
        deployment_status(p, generation=1, ready_replicas=ready, previous_conditions=[], now=T1)[
            "readyReplicas"
        ]
        for p in (mine, theirs)
    ]
    assert counts == [1, 0]
