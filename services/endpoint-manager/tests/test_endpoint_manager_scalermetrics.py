"""The scaler's arithmetic: engine text, trigger metadata, which services wake which deployments."""

from __future__ import annotations

from typing import Any

import pytest
from endpoint_manager.scalermetrics import (
    EngineSample,
    HeldReport,
    HeldService,
    Load,
    Objects,
    Query,
    ScalerInputError,
    deployment_load,
    is_active,
    metric_value,
    parse_engine_metrics,
    scaler_query,
    scrape_targets,
    selects,
    target_name,
)

Json = dict[str, Any]

# The shape vLLM 0.x serves: one label set per served model, floats, HELP/TYPE lines.
VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="qwen"} 3.0
vllm:num_requests_running{engine="0",model_name="qwen-lora"} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="qwen"} 5.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="qwen"} 1234.0
"""


def deployment(name: str = "qwen", namespace: str = "ml", **labels: str) -> Json:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def replica(
    name: str, cluster: str, *, deployment: str = "qwen", ready: bool = True, **spec: Any
) -> Json:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"deploymentName": deployment, "clusterName": cluster, **spec},
        "status": {
            "address": f"http://gw-{cluster}/ml/{name}",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(name: str, *selectors: dict[str, str], namespace: str = "ml") -> Json:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"endpoints": [{"selector": {"matchLabels": s}} for s in selectors]},
    }


def test_running_and_waiting_are_summed_over_every_served_model() -> None:
    assert parse_engine_metrics(VLLM_TEXT) == (4.0, 5.0)


def test_an_engine_without_the_gauges_counts_zero_and_garbage_is_refused() -> None:
    assert parse_engine_metrics("# TYPE other gauge\nother 7\n") == (0.0, 0.0)
    with pytest.raises(ValueError):
        parse_engine_metrics("<html>502 Bad Gateway</html>\n")


def test_the_query_defaults_to_in_flight_and_four_per_replica_on_the_target() -> None:
    assert scaler_query("ml", "so", {}, "qwen") == Query("ml", "qwen", "inFlight", 4.0)
    given = {"deployment": "llama", "metric": "waiting", "targetPerReplica": "2.5"}
    assert scaler_query("ml", "so", given, "qwen") == Query("ml", "llama", "waiting", 2.5)
    assert Query("ml", "llama", "inFlight").metric_name == "inflight-llama"


@pytest.mark.parametrize(
    ("metadata", "target", "named"),
    [
        ({}, None, "trigger metadata `deployment` is required"),
        ({"metric": "tokens"}, "qwen", "trigger metadata `metric`: 'tokens' is not one of"),
        ({"targetPerReplica": "many"}, "qwen", "`targetPerReplica`: 'many' is not a number"),
        ({"targetPerReplica": "0"}, "qwen", "`targetPerReplica`: must be a number above 0"),
        ({"targetPerReplica": "nan"}, "qwen", "`targetPerReplica`: must be a number above 0"),
    ],
)
def test_bad_metadata_is_refused_naming_the_scaled_object_and_the_field(
    metadata: dict[str, str], target: str | None, named: str
) -> None:
    with pytest.raises(ScalerInputError) as error:
        scaler_query("ml", "chat", metadata, target)
    assert str(error.value).startswith("ScaledObject ml/chat: ")
    assert named in str(error.value)


def test_the_target_is_taken_only_from_a_model_deployment_scale_target_ref() -> None:
    def scaled(ref: Json) -> Json:
        return {"spec": {"scaleTargetRef": ref}}

    ours = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelDeployment", "name": "qwen"}
    assert target_name(scaled(ours)) == "qwen"
    assert target_name(scaled({"kind": "ModelDeployment", "name": "qwen"})) == "qwen"
    assert target_name(scaled({"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"})) is None
    assert target_name(scaled({**ours, "apiVersion": "other.io/v1"})) is None
    assert target_name(None) is None


def test_a_service_selects_a_deployment_by_its_labels_and_name_on_any_cluster() -> None:
    gold = deployment(tier="gold")
    assert selects(service("chat", {"tier": "gold"}), gold)
    assert selects(service("chat", {"modelplane.ai/deployment": "qwen"}), gold)
    assert selects(service("chat", {"tier": "silver"}, {"tier": "gold"}), gold)
    assert selects(service("chat", {"tier": "gold", "modelplane.ai/cluster": "east"}), gold)
    assert not selects(service("chat", {"tier": "silver"}), gold)
    assert not selects(service("chat", {"tier": "gold"}, namespace="other"), gold)
    assert not selects(service("chat", {"modelplane.ai/deployment": "llama"}), gold)


def test_only_serving_replicas_are_scraped_through_their_gateway_path() -> None:
    targets = scrape_targets(
        [replica("qwen-east-0", "east"), replica("qwen-west-0", "west", ready=False)]
    )
    assert targets == {"ml/qwen-east-0": "http://gw-east/ml/qwen-east-0/metrics"}


def test_a_prefill_decode_replica_is_read_at_its_routers_load_path() -> None:
    """Its address leads to the router, whose `/metrics` is one decode pod's; the router's
    `/modelplane/load` sums them all. A Unified replica (said or by default) keeps
    `/metrics`."""
    targets = scrape_targets(
        [
            replica("kimi-east-0", "east", deployment="kimi", serving={"mode": "PrefillDecode"}),
            replica("qwen-east-0", "east", serving={"mode": "Unified"}),
            replica("qwen-west-0", "west"),
        ]
    )
    assert targets == {
        "ml/kimi-east-0": "http://gw-east/ml/kimi-east-0/modelplane/load",
        "ml/qwen-east-0": "http://gw-east/ml/qwen-east-0/metrics",
        "ml/qwen-west-0": "http://gw-west/ml/qwen-west-0/metrics",
    }


NOW = 1000.0


def test_the_load_sums_every_cluster_and_every_selecting_service() -> None:
    objects = Objects(
        deployments={"ml/qwen": deployment(tier="gold"), "ml/llama": deployment("llama")},
        services=[service("chat", {"tier": "gold"}), service("api", {"tier": "gold"})],
        replicas=[
            replica("qwen-east-0", "east"),
            replica("qwen-west-0", "west"),
            replica("qwen-west-1", "west", ready=False),
            replica("llama-east-0", "east", deployment="llama"),
        ],
    )
    samples = {
        "ml/qwen-east-0": EngineSample(2, 1, NOW - 1),
        "ml/qwen-west-0": EngineSample(3, 4, NOW - 2),
        "ml/qwen-west-1": EngineSample(50, 50, NOW),  # not serving: not counted
        "ml/llama-east-0": EngineSample(9, 9, NOW),  # another deployment
    }
    reports = [
        HeldReport("activator-a", NOW - 1, (HeldService("ml", "chat", 2),)),
        HeldReport(
            "activator-b", NOW - 3, (HeldService("ml", "chat", 1), HeldService("ml", "api", 4))
        ),
        HeldReport("activator-dead", NOW - 60, (HeldService("ml", "chat", 100),)),
    ]
    load = deployment_load(Query("ml", "qwen"), objects, samples, reports, NOW)
    assert load == Load(running=5, waiting=5, held=7, replicas=2)
    assert metric_value(load, "inFlight") == 17
    assert metric_value(load, "running") == 5
    assert metric_value(load, "waiting") == 5
    llama = deployment_load(Query("ml", "llama"), objects, samples, reports, NOW)
    assert llama == Load(running=9, waiting=9, held=0, replicas=1)


def test_a_stale_sample_counts_nothing_and_a_missing_deployment_is_none() -> None:
    objects = Objects({"ml/qwen": deployment()}, [], [replica("qwen-east-0", "east")])
    old = {"ml/qwen-east-0": EngineSample(7, 7, NOW - 60)}
    assert deployment_load(Query("ml", "qwen"), objects, old, [], NOW) == Load()
    assert deployment_load(Query("ml", "gone"), objects, old, [], NOW) is None


def test_anything_in_flight_or_held_keeps_a_deployment_active() -> None:
    assert not is_active(Load())
    assert is_active(Load(held=1))
    assert is_active(Load(running=1))  # even when it scales on `waiting`
    assert is_active(Load(waiting=0.5))
