"""One fleet-scheduler pass decided from live objects: replicas to apply and delete, status."""

from __future__ import annotations

import copy
from typing import Any

from fleet_scheduler.dryrun import explain
from fleet_scheduler.reconcile import decide
from fleet_scheduler.validated import ValidationCache
from modelplane.api.validation import validate

NOW = "2026-11-29T04:00:00Z"
GPU = {"name": "gpu", "driver": "gpu.nvidia.com", "deviceClassName": "gpu.nvidia.com",
       "count": 1, "capacity": {"memory": {"value": "23034Mi"}}}  # fmt: skip
L4 = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceClass",
      "metadata": {"name": "l4"}, "spec": {"devices": [GPU]}}  # fmt: skip
SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'


def cluster(name: str, nodes: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "InferenceCluster",
        "metadata": {"name": name, "labels": {"modelplane.ai/region": name}},
        "spec": {
            "cluster": {"source": "Existing", "existing": {"secretRef": {"name": f"{name}-kc"}}},
            "nodePools": [{"name": "l4", "className": "l4", "nodeCount": nodes}],
        },
        "status": {
            "gatewayAddress": "10.240.0.2",
            "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady"}],
        },
    }


def deployment(
    replicas: int,
    selector: str = SELECTOR,
    *,
    name: str = "chat",
    namespace: str = "ml",
    created: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": "u-1", "generation": 2}
    if created is not None:
        meta["creationTimestamp"] = created
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "engines": [{"name": name, "members": [{
                "role": "Standalone",
                "nodeSelector": {"devices": [{"name": "gpu", "count": 1, "selectors": [{"cel": selector}]}]},
                "template": {"spec": {"containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.23.0"}]}},
            }]}],
        },
    }  # fmt: skip


def as_existing(replica: dict[str, Any], ready: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(replica)
    out["metadata"]["uid"] = "r-" + out["metadata"]["name"]
    if ready:
        out["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return out


FLEET = [L4, cluster("east", 2), cluster("west", 1)]


def test_a_new_deployment_gets_its_replicas_spread_and_a_status() -> None:
    decision = decide([*FLEET, deployment(3)], NOW)
    assert sorted(r["metadata"]["name"] for r in decision.apply) == [
        "chat-east-0", "chat-east-2", "chat-west-1",
    ]  # fmt: skip
    assert decision.delete == ()
    [(namespace, name, status)] = decision.status
    assert (namespace, name) == ("ml", "chat")
    assert {k: status[k] for k in ("desiredReplicas", "replicas", "readyReplicas", "selector")} == {
        "desiredReplicas": 3, "replicas": 3, "readyReplicas": 0,
        "selector": "modelplane.ai/deployment=chat",
    }  # fmt: skip
    assert status["observedGeneration"] == 2
    owner = decision.apply[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("ModelDeployment", "u-1", True)


def test_a_second_pass_over_its_own_result_changes_nothing() -> None:
    first = decide([*FLEET, deployment(2)], NOW)
    md = deployment(2)
    md["status"] = first.status[0][2]
    again = decide([*FLEET, md, *(as_existing(r) for r in first.apply)], NOW)
    assert (again.apply, again.delete, again.status) == ((), (), ())


def test_scaling_down_deletes_the_highest_indices_first_and_moves_nothing() -> None:
    first = decide([*FLEET, deployment(3)], NOW)
    existing = [as_existing(r, ready=True) for r in first.apply]
    down = decide([*FLEET, deployment(1), *existing], NOW)
    assert sorted(name for _, name in down.delete) == ["chat-east-2", "chat-west-1"]
    assert down.apply == ()
    assert down.status[0][2]["readyReplicas"] == 1


def test_a_replica_deleted_already_is_not_deleted_again_while_its_finalizer_is_pending() -> None:
    first = decide([*FLEET, deployment(3)], NOW)
    existing = [as_existing(r, ready=True) for r in first.apply]
    for replica in existing:
        if replica["metadata"]["name"] == "chat-west-1":
            replica["metadata"]["deletionTimestamp"] = NOW
            replica["metadata"]["finalizers"] = ["modelplane.ai/endpoint-manager"]
    down = decide([*FLEET, deployment(1), *existing], NOW)
    assert down.delete == (("ml", "chat-east-2"),)
    assert down.apply == ()


def test_an_invalid_selector_holds_the_placed_replicas_and_says_why() -> None:
    first = decide([*FLEET, deployment(1)], NOW)
    existing = [as_existing(r) for r in first.apply]
    held = decide([*FLEET, deployment(3, selector="device.capacity["), *existing], NOW)
    assert (held.apply, held.delete) == ((), ())
    scheduled = next(c for c in held.status[0][2]["conditions"] if c["type"] == "Scheduled")
    assert scheduled["status"] == "False"
    assert scheduled["reason"] == "InvalidSelector"
    assert "the 1 placed replicas are kept" in scheduled["message"]


def test_an_edited_template_updates_retained_replicas_in_place() -> None:
    first = decide([*FLEET, deployment(1)], NOW)
    existing = [as_existing(r) for r in first.apply]
    edited = deployment(1)
    edited["spec"]["engines"][0]["members"][0]["template"]["spec"]["containers"][0]["image"] = (
        "vllm/vllm-openai:v0.24.0"
    )
    decision = decide([*FLEET, edited, *existing], NOW)
    assert [r["metadata"]["name"] for r in decision.apply] == [first.apply[0]["metadata"]["name"]]
    assert decision.apply[0]["spec"]["clusterName"] == first.apply[0]["spec"]["clusterName"]
    assert decision.delete == ()


def test_a_deployment_being_deleted_is_left_to_garbage_collection() -> None:
    md = deployment(2)
    md["metadata"]["deletionTimestamp"] = NOW
    assert decide([*FLEET, md], NOW).apply == ()


def test_a_cluster_being_deleted_loses_its_replicas_to_the_others() -> None:
    first = decide([*FLEET, deployment(2)], NOW)
    existing = [as_existing(r, ready=True) for r in first.apply]
    on_west = [r["metadata"]["name"] for r in existing if r["spec"]["clusterName"] == "west"]
    assert on_west, "the spread put one replica on west"
    leaving = cluster("west", 1)
    leaving["metadata"]["deletionTimestamp"] = NOW
    leaving["metadata"]["finalizers"] = ["modelplane.ai/cluster-provisioner"]
    decision = decide([L4, cluster("east", 2), leaving, deployment(2), *existing], NOW)
    assert decision.delete == tuple(("ml", name) for name in on_west)
    assert [r["spec"]["clusterName"] for r in decision.apply] == ["east"]


def test_ready_replicas_are_counted_per_namespace_not_by_name_alone() -> None:
    two = [deployment(1, namespace="ml"), deployment(1, namespace="ml-2")]
    first = decide([*FLEET, *two], NOW)
    assert sorted((r["metadata"]["namespace"], r["metadata"]["name"]) for r in first.apply) == [
        ("ml", "chat-east-0"), ("ml-2", "chat-east-0"),
    ]  # fmt: skip
    existing = [as_existing(r, ready=r["metadata"]["namespace"] == "ml") for r in first.apply]
    again = decide([*FLEET, *two, *existing], NOW)
    ready = {(ns, name): status["readyReplicas"] for ns, name, status in again.status}
    assert ready == {("ml", "chat"): 1, ("ml-2", "chat"): 0}


def test_the_oldest_deployment_gets_the_capacity_whatever_the_listing_order() -> None:
    young = deployment(1, name="young", created="2026-11-29T03:00:00Z")
    old = deployment(1, name="old", created="2026-11-28T03:00:00Z")
    decision = decide([L4, cluster("west", 1), young, old], NOW)
    assert [r["metadata"]["name"] for r in decision.apply] == ["old-west-0"]


def test_explain_answers_what_the_pass_decided() -> None:
    """Listing order, age and a cluster being deleted all as the reconcile sees them."""
    young = deployment(2, name="young", created="2026-11-29T03:00:00Z")
    old = deployment(1, name="old", created="2026-11-28T03:00:00Z")
    leaving = cluster("north", 5)
    leaving["metadata"]["deletionTimestamp"] = NOW
    degraded = cluster("south", 5)
    del degraded["status"]["gatewayAddress"]
    objects = [L4, cluster("east", 2), cluster("west", 1), leaving, degraded, young, old]
    decision = decide(objects, NOW)
    assert sorted(r["metadata"]["name"] for r in decision.apply) == [
        "old-east-0", "young-east-0", "young-west-1",
    ]  # fmt: skip
    explained = {
        name: [(r.index, r.cluster) for r in report.replicas]
        for name in ("old", "young")
        if (report := explain(objects, "ml", name, offline=False)) is not None
    }
    assert explained == {"old": [(0, "east")], "young": [(0, "east"), (1, "west")]}


def test_a_replica_whose_engine_grew_is_updated_with_its_new_node_cost() -> None:
    first = decide([*FLEET, deployment(1)], NOW)
    existing = [as_existing(r) for r in first.apply]
    assert [e["nodeCost"] for e in existing[0]["spec"]["engines"]] == [1]
    gang = deployment(1)
    standalone = gang["spec"]["engines"][0]["members"][0]
    gang["spec"]["engines"][0]["members"] = [
        {**standalone, "role": "Leader"},
        {**standalone, "role": "Worker", "worker": {"nodes": 1}},
    ]
    decision = decide([*FLEET, gang, *existing], NOW)
    assert [(r["metadata"]["name"], [e["nodeCost"] for e in r["spec"]["engines"]])
            for r in decision.apply] == [("chat-east-0", [2])]  # fmt: skip
    assert decision.delete == ()


class CountingValidate:
    """The real `validate`, counting the objects it is given by name."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, obj: Any) -> tuple[dict[str, Any], list[Any]]:
        self.seen.append(obj["metadata"]["name"])
        return validate(obj)


def listed(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`objects` as the API server lists them: each with a uid and a resourceVersion."""
    out = copy.deepcopy(objects)
    for i, obj in enumerate(out):
        obj["metadata"].update(uid=f"uid-{i}", resourceVersion=str(100 + i))
    return out


def test_a_pass_over_unchanged_objects_validates_none_of_them_again() -> None:
    check = CountingValidate()
    remembered = ValidationCache(check)
    objects = listed([*FLEET, deployment(3), deployment(0, name="idle")])
    first = decide(objects, NOW, remembered)
    assert sorted(check.seen) == ["chat", "east", "idle", "l4", "west"]
    check.seen.clear()
    again = decide(objects, NOW, remembered)
    assert check.seen == [], "every object version was validated already"
    assert again == first == decide(objects, NOW), "remembering changes no decision"


def test_a_new_version_of_an_object_is_validated_again_and_gone_ones_are_forgotten() -> None:
    check = CountingValidate()
    remembered = ValidationCache(check)
    objects = listed([*FLEET, deployment(3), deployment(0, name="idle")])
    decide(objects, NOW, remembered)
    check.seen.clear()
    objects[3]["spec"]["replicas"] = 1
    objects[3]["metadata"]["resourceVersion"] = "200"
    assert len(decide(objects, NOW, remembered).apply) == len(decide(objects, NOW).apply) == 1
    assert check.seen == ["chat"]
    remembered.retain(objects[:4])
    assert sorted(remembered.results) == ["uid-0", "uid-1", "uid-2", "uid-3"]


def test_an_invalid_version_stays_invalid_when_remembered() -> None:
    remembered = ValidationCache()
    objects = listed([*FLEET, deployment(1, selector="device.bogus(")])
    for _ in range(2):
        [(_, _, status)] = decide(objects, NOW, remembered).status
        scheduled = {c["type"]: c for c in status["conditions"]}["Scheduled"]
        assert scheduled["status"] == "False"
        assert "spec.engines[0].members[0].nodeSelector" in scheduled["message"]
