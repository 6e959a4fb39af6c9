"""Issue 15 end to end: a gated model staged by cache-hydrator, served by a multi-node gang.

The documentation's qwen3-coder recipe (seed manifests, `examples/qwen3-coder`: a
ModelCache with an authSecret, a Leader + Worker ModelDeployment reading `/mnt/models`
and its ModelService), sizes adapted to `e2e/fleet.yaml`: each member claims one Ada
GPU of east's `l4` pool (no EFA), tensor parallelism 1 and pipeline parallelism 2
across the two nodes; the engine flags are otherwise as written (vLLM images run as
the engine simulator, which loads config.json and the safetensors of `/mnt/models`).
The repository is a small synthetic model the test writes, gated, into the fleet's
hub; the cache's clusterSelector covers east only (of east and west).

With cluster-provisioner, fleet-scheduler, cache-hydrator, endpoint-manager and
gateway-config running as their own processes: the replica lands on east, waits with
`CacheReady=False` (nothing applied) until east's copy is Ready, then runs as a
LeaderWorkerSet whose two pods, on two nodes, mount the cache's claim read-only at
`/mnt/models` and load the hub's bytes from it; the official `openai` SDK is answered
by the leader through the ModelService's front-door address, streamed and not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, is_ready, items, wait_for
from e2e.modelcache import cache_hydrator, gated_repository, hub_commit, token_secret
from e2e.services import Service, gateway_config, placing_and_serving, serving

pytestmark = pytest.mark.usefixtures("local_fleet")
RECIPE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests" / "examples"
CODER = RECIPE / "qwen3-coder"
ADA = 'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"'
REPO, TOKEN = "acme/coder-mini", "hf_e2e_gang_token"
NAME = "qwen3-coder"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    placing = placing_and_serving(local_fleet, 9161, logs)
    running = {
        **placing,
        "cache-hydrator": cache_hydrator(
            local_fleet, 9164, f"{control.plan.address}:{9161 + 41000}", logs / "ch.log"
        ),
        "gateway-config": gateway_config(local_fleet, 9165, logs / "gc.log"),
    }
    apply(
        control,
        {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceGateway",
         "metadata": {"name": "default"}, "spec": {"backend": "Traefik"}},
    )  # fmt: skip
    try:
        with serving(control, running, drain=True) as ready:
            yield ready
            control.kubectl("delete", "modelcaches", "--all", "-A", "--wait=false")
            wait_for("every ModelCache released",
                     lambda: not items(control, "modelcaches", "-A"), 120)  # fmt: skip
    finally:
        control.kubectl("delete", "inferencegateway", "default", "--wait=false", check=False)


def recipe(name: str, namespace: str) -> Json:
    manifest: Json = yaml.safe_load((CODER / name).read_text())
    manifest["metadata"]["namespace"] = namespace
    return manifest


def model_cache(namespace: str) -> Json:
    """The recipe's ModelCache, from the hub's small repository, on east's region only."""
    cache = recipe("model-cache.yaml", namespace)
    cache["spec"]["huggingFace"].update(repo=REPO, sizeGiB=1)
    cache["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    return cache


def coder(namespace: str) -> Json:
    """The recipe's gang with the sizes of the e2e fleet (see the docstring)."""
    deployment = recipe("model-deployment.yaml", namespace)
    deployment["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    (engine,) = deployment["spec"]["engines"]
    for member in engine["members"]:
        member["nodeSelector"] = {
            "devices": [{"name": "gpu", "count": 1, "selectors": [{"cel": ADA}]}]
        }
        (box,) = member["template"]["spec"]["containers"]
        box["command"][-1] = box["command"][-1].replace(
            "--tensor-parallel-size=8", "--tensor-parallel-size=1"
        )
        box["ports"] = [{"name": "http", "containerPort": 8000}]
    return deployment


def pod_log(fleet: Fleet, pod: Json, container: str) -> str:
    meta = pod["metadata"]
    folder = f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
    path = fleet.state / "run" / "east" / "node-agent" / "pods" / folder / "logs"
    return (path / f"{container}.log").read_text()


def gang(east: Cluster, namespace: str) -> list[Json]:
    """The gang's Ready pods, the leader first."""
    pods = [
        p
        for p in items(east, "pods", "-n", namespace, "-l", f"modelplane.ai/engine={NAME}")
        if is_ready(p) and not p["metadata"].get("deletionTimestamp")
    ]
    return sorted(pods, key=lambda p: p["metadata"]["labels"].get(LWS_INDEX_LABEL, ""))


def address_of(control: Cluster, namespace: str) -> str | None:
    found = get(control, "modelservice", "-n", namespace, NAME)
    return (found.get("status") or {}).get("address")


def answered(client: openai.OpenAI) -> bool:
    try:
        client.completions.create(model=NAME, prompt="hi", max_tokens=2)
    except openai.OpenAIError:
        return False
    return True


@pytest.fixture(scope="module")
def staged(local_fleet: Fleet) -> dict[str, bytes]:
    return gated_repository(local_fleet, REPO, TOKEN, seed_value=152)


def test_a_gang_waits_for_its_cache_then_serves_the_hub_model_through_the_front_door(
    local_fleet: Fleet, services: dict[str, Service], staged: dict[str, bytes], namespace: str
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    began = time.monotonic()
    apply(control, token_secret(namespace, TOKEN), model_cache(namespace), coder(namespace))
    apply(control, recipe("model-service.yaml", namespace))
    (replica,) = wait_for(
        "a ModelReplica", lambda: items(control, "modelreplicas", "-n", namespace), 60
    )
    name = replica["metadata"]["name"]
    assert replica["spec"]["clusterName"] == "east"

    def gate() -> Json | None:
        found = condition(get(control, "modelreplica", "-n", namespace, name), "CacheReady")
        return found or None

    first = wait_for("the replica's CacheReady", gate, 60)
    assert (first["status"], first["reason"]) == ("False", "CacheNotReady"), first
    assert first["message"].startswith(
        (
            f"ModelReplica {namespace}/{name}: ModelCache {namespace}/{NAME} has no copy on east",
            f"ModelReplica {namespace}/{name}: waiting for ModelCache {namespace}/{NAME} on east: ",
        )
    ), first
    assert items(east, "leaderworkersets", "-n", namespace) == [], "applied before the cache"

    def passed() -> Json | None:
        found = gate()
        return found if found and found["status"] == "True" else None

    staged_gate = wait_for("the cache Ready on east", passed, 240)
    commit = hub_commit(REPO, TOKEN)
    assert staged_gate["message"] == (
        f"ModelReplica {namespace}/{name}: ModelCache {namespace}/{NAME} is Ready on east "
        f"(commit {commit})"
    )

    def two_ready() -> list[Json] | None:
        found = gang(east, namespace)
        return found if len(found) == 2 else None

    pods = wait_for("the gang's two pods Ready", two_ready, 240)
    (lws,) = items(east, "leaderworkersets", "-n", namespace)
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    assert {p["metadata"]["labels"][LWS_NAME_LABEL] for p in pods} == {lws["metadata"]["name"]}
    nodes = [p["spec"]["nodeName"] for p in pods]
    assert len(set(nodes)) == 2 and all(n.startswith("east-l4-") for n in nodes), nodes
    shards = sorted(n for n in staged if n.endswith(".safetensors"))
    megabytes = sum(len(staged[n]) for n in shards) / (1 << 20)
    for pod in pods:
        spec = pod["spec"]
        claims = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert [c["persistentVolumeClaim"]["claimName"] for c in claims] == [f"modelcache-{NAME}"]
        (engine,) = [c for c in spec["containers"] if c["name"] == "engine"]
        mounts = [m for m in engine["volumeMounts"] if m["name"] == claims[0]["name"]]
        assert [(m["mountPath"], m.get("readOnly")) for m in mounts] == [("/mnt/models", True)]
        loaded = [
            line
            for line in pod_log(local_fleet, pod, "engine").splitlines()
            if line.startswith("loaded /mnt/models")
        ]
        assert loaded and loaded[0].startswith(
            f"loaded /mnt/models: {len(shards)} safetensors files, {len(shards)} tensors, "
            f"{megabytes:.1f} MiB"
        ), (pod["metadata"]["name"], loaded)

    endpoint = wait_for(
        "the ModelEndpoint", lambda: items(control, "modelendpoints", "-n", namespace), 120
    )[0]
    assert endpoint["metadata"]["name"] == name
    ready = condition(get(control, "modelreplica", "-n", namespace, name), "Ready")
    assert ready.get("status") == "True", ready
    address = str(wait_for("the ModelService address", lambda: address_of(control, namespace), 60))
    client = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0)
    wait_for("an answer through the front door", lambda: answered(client), 120)
    print(f"figure: gang served at the front door {time.monotonic() - began:.1f}s after apply")

    leader = f"{namespace}/{pods[0]['metadata']['name']}"
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "Write a function that adds two numbers."}
    ]
    whole = client.chat.completions.with_raw_response.create(
        model=NAME, messages=messages, max_tokens=8
    )
    answer = whole.parse()
    assert answer.model == NAME
    assert answer.choices[0].message.content, answer
    assert whole.headers.get("x-modelplane-pod") == leader
    streamed = client.chat.completions.with_raw_response.create(
        model=NAME, messages=messages, max_tokens=8, stream=True
    )
    chunks = list(streamed.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text, chunks
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("length", "stop")
    assert streamed.headers.get("x-modelplane-pod") == leader
