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
gateway-config running as their own processes: the deployment (two replicas, any
cluster) gets one replica, on east; `modelplane explain` says west is outside the
cache's footprint (east's L4 nodes hold one gang of two). The replica waits with
`CacheReady=False` (nothing applied) until east's copy is Ready, then runs as a
LeaderWorkerSet whose two pods, on two nodes, mount the cache's claim read-only at
`/mnt/models` and load the hub's bytes from it; the official `openai` SDK is answered
by the leader through the ModelService's front-door address, streamed and not.
A cache whose token the hub refuses, and one whose `sizeGiB` is below its repository's
size (a sparse file of just over 1 GiB in the hub), end Failed naming the field; a gang
using the first stays waiting with nothing applied.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml
from modelplane_hubsim import seed
from modelplane_localfleet import hub
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, is_ready, items, wait_for
from e2e.modelcache import (
    HUB,
    cache_hydrator,
    caches_released,
    gated_repository,
    hub_commit,
    token_secret,
)
from e2e.services import (
    Service,
    front_door,
    gateway_config,
    placing_and_serving,
    serving,
    tls_dir,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
RECIPE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests" / "examples"
CODER = RECIPE / "qwen3-coder"
ADA = 'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"'
REPO, TOKEN = "acme/coder-mini", "hf_e2e_gang_token"
BIG_REPO = "acme/coder-big"
FIRST_PORT = 9161  # status ports 9161..9165; the scheduler's gRPC on FIRST_PORT + 41001
SCHEDULER_PORT = FIRST_PORT + 41001
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
    placing = placing_and_serving(local_fleet, FIRST_PORT, logs)
    running = {
        **placing,
        "cache-hydrator": cache_hydrator(
            local_fleet,
            FIRST_PORT + 3,
            f"{control.plan.address}:{FIRST_PORT + 41000}",
            logs / "ch.log",
        ),
        "gateway-config": gateway_config(local_fleet, FIRST_PORT + 4, logs / "gc.log"),
    }
    with (
        front_door(control),
        serving(control, running, drain=True) as ready,
        caches_released(control),
    ):
        yield ready


def recipe(name: str, namespace: str) -> Json:
    manifest: Json = yaml.safe_load((CODER / name).read_text())
    manifest["metadata"]["namespace"] = namespace
    return manifest


def model_cache(
    namespace: str, name: str = NAME, repo: str = REPO, secret: str = "hf-token"
) -> Json:
    """The recipe's ModelCache, from a small repository of the hub, on east's region only."""
    cache = recipe("model-cache.yaml", namespace)
    cache["metadata"]["name"] = name
    cache["spec"]["huggingFace"].update(repo=repo, sizeGiB=1)
    cache["spec"]["huggingFace"]["authSecret"]["name"] = secret
    cache["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    return cache


def coder(namespace: str, name: str = NAME) -> Json:
    """The recipe's gang with the sizes of the e2e fleet (see the docstring), named `name`
    and reading the ModelCache of that name."""
    deployment = recipe("model-deployment.yaml", namespace)
    deployment["metadata"]["name"] = name
    deployment["spec"]["modelCacheRef"] = {"name": name}
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
    # any cluster and two gangs: the cache's footprint (east) keeps west out, and east's
    # three L4 nodes hold one gang of two
    gangs = coder(namespace)
    del gangs["spec"]["clusterSelector"]
    gangs["spec"]["replicas"] = 2
    apply(control, token_secret(namespace, TOKEN), model_cache(namespace), gangs)
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
    explained = subprocess.run(
        [sys.executable, "-m", "modelplane", "explain", f"md/{NAME}", "-n", namespace,
         f"--scheduler={control.plan.address}:{SCHEDULER_PORT}",
         f"--tls-dir={tls_dir(local_fleet, 'modelplane-cli')}"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    assert f'  west: outside the footprint of ModelCache "{NAME}"' in explained.stdout, (
        explained.stdout
    )

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


def entry_on_east(control: Cluster, namespace: str, name: str) -> Json | None:
    """east's entry of the ModelCache once it is Failed."""
    status = get(control, "modelcache", "-n", namespace, name).get("status") or {}
    found = [e for e in status.get("clusters") or [] if e["clusterName"] == "east"]
    return found[0] if found and found[0]["phase"] == "Failed" else None


def test_a_refused_token_and_a_too_small_size_fail_naming_the_field_and_the_gang_waits(
    local_fleet: Fleet, services: dict[str, Service], staged: dict[str, bytes], namespace: str
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    root = hub.configured_root(local_fleet.cluster("control").config_dir)
    assert root is not None
    big = seed.write_revision(root, BIG_REPO, "main", {"config.json": staged["config.json"]})
    with (big / "model.safetensors").open("wb") as sparse:
        os.truncate(sparse.fileno(), (1 << 30) + (1 << 20))  # just over 1 GiB, no bytes written
    seed.configure(root, BIG_REPO, gated=True, tokens=(TOKEN,))
    apply(
        control,
        token_secret(namespace, TOKEN),
        token_secret(namespace, "hf_not_the_token", name="hf-wrong"),
        model_cache(namespace, "denied", secret="hf-wrong"),
        model_cache(namespace, "cramped", repo=BIG_REPO),
        coder(namespace, "denied"),
    )

    denied = wait_for(
        "the refused token's entry", lambda: entry_on_east(control, namespace, "denied"), 180
    )
    assert denied["message"] == (
        f"spec.huggingFace.authSecret: the hub refused the token for {REPO} on {HUB} (HTTP 403)"
    ), denied
    cramped = wait_for(
        "the too-small cache's entry", lambda: entry_on_east(control, namespace, "cramped"), 180
    )
    assert cramped["message"].startswith(
        f"spec.huggingFace.sizeGiB: 1 GiB is below the size of {BIG_REPO} at "
        f"{hub_commit(BIG_REPO, TOKEN)} ("
    ), cramped

    # placed once the l4 pool is free (the previous test's gang may still be going)
    (replica,) = wait_for(
        "a ModelReplica", lambda: items(control, "modelreplicas", "-n", namespace), 180
    )
    name = replica["metadata"]["name"]

    def failed_gate() -> Json | None:
        found = condition(get(control, "modelreplica", "-n", namespace, name), "CacheReady")
        return found if "Failed" in found.get("message", "") else None

    gate = wait_for("the replica waiting on the Failed copy", failed_gate, 60)
    assert (gate["status"], gate["reason"]) == ("False", "CacheNotReady"), gate
    assert gate["message"].startswith(
        f"ModelReplica {namespace}/{name}: waiting for ModelCache {namespace}/denied on east: "
        "Failed"
    ), gate
    assert gate["message"].endswith(denied["message"]), gate
    assert items(east, "leaderworkersets", "-n", namespace) == [], "a gang without its cache"
