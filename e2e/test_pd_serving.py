"""Issue 16: a PrefillDecode ModelDeployment served through the control plane on the local fleet.

The documentation's kimi-k2 recipe (seed manifests, `examples/kimi-k2`), sizes
adapted to `e2e/fleet.yaml`: the prefill engine (`kv_producer`, two copies) on
one Hopper GPU each in east's `h100` pool, the decode engine (`kv_consumer`, on
:8001 as in the recipe) on one Ada GPU in `l4`; no ModelCache and no HF token
(the engines are the simulator, which fetches nothing). The engines' flags stay
as written. Applied with kubectl as a ModelDeployment plus the recipe's
ModelService, with fleet-scheduler, cluster-provisioner, endpoint-manager and
gateway-config running as their own processes: endpoint-manager renders both
engines, a Service per phase and the prefill/decode router (from
`modelplane/modelplane`, which the node agent runs from this checkout's
environment) on east's system node, in-cluster credentials and all.

Requests go to the ModelService's address (the control cluster's front door)
with the official `openai` SDK (chat and completions, streamed and not) and the
`anthropic` SDK. The simulated decode engine names the prefill pod it fetched
the KV blocks from (`X-Modelplane-Prefill-Pod`) only after the fetch succeeded
(forged, expired or missing parameters are a 400), so that header on every
OpenAI answer, with `X-Modelplane-Pod` naming a decode pod, proves each request
was prefilled on a prefill pod and decoded on a decode pod with valid
parameters; `/v1/messages` is answered by decode alone. Prompts sharing a
long prefix are prefilled on one pod (the router's prefix affinity). Then a
prefill pod is deleted while chat completions arrive at 10 per second: none
fails.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, is_ready, items, wait_for
from e2e.services import Service, gateway_config, placing_and_serving, serving

pytestmark = pytest.mark.usefixtures("local_fleet")
RECIPE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests" / "examples"
KIMI = RECIPE / "kimi-k2"
HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
ADA = 'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"'
SIZES = {"kimi-prefill": (HOPPER, 2), "kimi-decode": (ADA, 1)}
"""Per engine: the GPU it claims (one) and its copies."""
# Long enough (> the router's 512-character threshold) to be prefilled remotely.
PROMPT = "Summarise the following design notes for a new engineer. " + " ".join(
    f"Note {i}: the router sends the prompt to a prefill pod first, then to a decode pod."
    for i in range(12)
)
MESSAGES: Any = [{"role": "user", "content": PROMPT}]


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    running = {
        **placing_and_serving(local_fleet, 9151, logs),
        "gateway-config": gateway_config(local_fleet, 9154, logs / "gc.log"),
    }
    apply(
        control,
        {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceGateway",
         "metadata": {"name": "default"}, "spec": {"backend": "Traefik"}},
    )  # fmt: skip
    try:
        with serving(control, running, drain=True) as ready:
            yield ready
    finally:
        control.kubectl("delete", "inferencegateway", "default", "--wait=false", check=False)


def kimi(namespace: str) -> Json:
    """The recipe's ModelDeployment with the sizes of the e2e fleet (see the docstring)."""
    manifest: Json = yaml.safe_load((KIMI / "model-deployment.yaml").read_text())
    manifest["metadata"]["namespace"] = namespace
    del manifest["spec"]["modelCacheRef"]
    manifest["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    for engine in manifest["spec"]["engines"]:
        cel, copies = SIZES[engine["name"]]
        engine["copies"] = copies
        (member,) = engine["members"]
        member["nodeSelector"] = {
            "devices": [{"name": "gpu", "count": 1, "selectors": [{"cel": cel}]}]
        }
        (box,) = member["template"]["spec"]["containers"]
        del box["env"]  # HF_TOKEN: nothing is downloaded here
        # the recipe serves its ModelCache's mount; without a cache the engine serves a name
        assert box["command"] == ["vllm", "serve", "/mnt/models"], box["command"]
        box["command"] = ["vllm", "serve", "moonshotai/Kimi-K2-Instruct"]
        # no `ports`: endpoint-manager reads each engine's port from its `--port=` arg
        assert "ports" not in box, box["ports"]
    return manifest


def model_service(namespace: str) -> Json:
    manifest: Json = yaml.safe_load((KIMI / "model-service.yaml").read_text())
    manifest["metadata"]["namespace"] = namespace
    return manifest


def pods_of(east: Cluster, namespace: str, engine: str) -> list[Json]:
    return [
        p
        for p in items(east, "pods", "-n", namespace, "-l", f"modelplane.ai/engine={engine}")
        if is_ready(p) and not p["metadata"].get("deletionTimestamp")
    ]


def names(namespace: str, pods: list[Json]) -> set[str]:
    return {f"{namespace}/{p['metadata']['name']}" for p in pods}


def address_of(control: Cluster, namespace: str) -> str | None:
    found = get(control, "modelservice", "-n", namespace, "kimi-k2")
    return (found.get("status") or {}).get("address")


def answered(address: str) -> bool:
    try:
        return httpx.post(
            f"{address}/v1/completions",
            json={"model": "kimi-k2", "prompt": "hi", "max_tokens": 2},
            timeout=10,
        ).is_success
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def deployed(local_fleet: Fleet, services: dict[str, Service]) -> Iterator[tuple[str, str]]:
    """(namespace, service address) of kimi-k2 once the front door answers through it; the
    namespace goes afterwards (the services' drain then waits for the replica's teardown)."""
    control = local_fleet.cluster("control")
    namespace = f"pd-{int(time.time()) % 100000}"
    control.kubectl("create", "namespace", namespace)
    began = time.monotonic()
    apply(control, kimi(namespace))
    apply(control, model_service(namespace))
    endpoint = wait_for(
        "the ModelEndpoint", lambda: items(control, "modelendpoints", "-n", namespace), 240
    )[0]
    print(f"ModelEndpoint published {time.monotonic() - began:.1f}s after kubectl apply")
    replica = get(control, "modelreplica", "-n", namespace, endpoint["metadata"]["name"])
    assert condition(replica, "Ready").get("status") == "True"
    address = str(wait_for("the ModelService address", lambda: address_of(control, namespace), 60))
    wait_for("an answer through the front door", lambda: answered(address), 120)
    print(f"served at the front door {time.monotonic() - began:.1f}s after kubectl apply")
    try:
        yield namespace, address
    finally:
        control.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_replica_runs_each_phase_on_its_pool_and_the_router_on_the_system_node(
    local_fleet: Fleet, deployed: tuple[str, str]
) -> None:
    namespace, _ = deployed
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    (replica,) = items(control, "modelreplicas", "-n", namespace)
    assert replica["spec"]["clusterName"] == "east"
    assert [(e["name"], e["nodePoolName"]) for e in replica["spec"]["engines"]] == [
        ("kimi-prefill", "h100"),
        ("kimi-decode", "l4"),
    ]
    prefill = pods_of(east, namespace, "kimi-prefill")
    decode = pods_of(east, namespace, "kimi-decode")
    routers = [
        p
        for p in items(east, "pods", "-n", namespace, "-l", "modelplane.ai/role=Router")
        if is_ready(p)
    ]
    assert len(prefill) == 2 and all(
        p["spec"]["nodeName"].startswith("east-h100-") for p in prefill
    )
    assert len(decode) == 1 and decode[0]["spec"]["nodeName"].startswith("east-l4-")
    assert [p["spec"]["nodeName"] for p in routers] == ["east-system-0"]
    # the router found both phases through the EndpointSlices it may read in-cluster
    router_ip = routers[0]["status"]["podIP"]
    page = httpx.get(f"http://{router_ip}:9090/metrics", timeout=10).text
    assert 'modelplane_pd_router_pods{phase="prefill"} 2.0' in page, page
    assert 'modelplane_pd_router_pods{phase="decode"} 1.0' in page, page


def _seen(headers: Mapping[str, str], text: str) -> tuple[str, str, bool]:
    """(decode pod, prefill pod, whether the answer had text) of one answer."""
    return (
        headers.get("x-modelplane-pod", ""),
        headers.get("x-modelplane-prefill-pod", ""),
        bool(text),
    )


def _chat(client: openai.OpenAI, stream: bool) -> tuple[str, str, bool]:
    chat = client.chat.completions.with_raw_response
    if stream:
        chunks = chat.create(model="kimi-k2", messages=MESSAGES, max_tokens=8, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks.parse() if c.choices)
        return _seen(chunks.headers, text)
    whole = chat.create(model="kimi-k2", messages=MESSAGES, max_tokens=8)
    return _seen(whole.headers, whole.parse().choices[0].message.content or "")


def _completion(client: openai.OpenAI, stream: bool) -> tuple[str, str, bool]:
    completions = client.completions.with_raw_response
    if stream:
        chunks = completions.create(model="kimi-k2", prompt=PROMPT, max_tokens=8, stream=True)
        return _seen(
            chunks.headers, "".join(c.choices[0].text for c in chunks.parse() if c.choices)
        )
    whole = completions.create(model="kimi-k2", prompt=PROMPT, max_tokens=8)
    return _seen(whole.headers, whole.parse().choices[0].text)


def test_openai_requests_are_prefilled_on_a_prefill_pod_and_decoded_on_a_decode_pod(
    local_fleet: Fleet, deployed: tuple[str, str]
) -> None:
    namespace, address = deployed
    east = local_fleet.cluster("east")
    prefill = names(namespace, pods_of(east, namespace, "kimi-prefill"))
    decode = names(namespace, pods_of(east, namespace, "kimi-decode"))
    client = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0)
    answers = {
        (kind, stream): [call(client, stream) for _ in range(3)]
        for kind, call in (("chat", _chat), ("completion", _completion))
        for stream in (False, True)
    }
    for (kind, stream), replies in answers.items():
        for decoded_on, prefilled_on, has_text in replies:
            assert decoded_on in decode, (kind, stream, decoded_on, decode)
            assert prefilled_on in prefill, (kind, stream, prefilled_on, prefill)
            assert has_text, (kind, stream)


def test_anthropic_messages_go_to_a_decode_pod_unchanged(
    local_fleet: Fleet, deployed: tuple[str, str]
) -> None:
    namespace, address = deployed
    east = local_fleet.cluster("east")
    decode = names(namespace, pods_of(east, namespace, "kimi-decode"))
    client = anthropic.Anthropic(base_url=address, api_key="unused", max_retries=0)
    for _ in range(3):
        reply = client.messages.with_raw_response.create(
            model="kimi-k2", max_tokens=8, messages=MESSAGES
        )
        block = reply.parse().content[0]
        assert getattr(block, "text", ""), block
        assert reply.headers.get("x-modelplane-pod") in decode
        assert "x-modelplane-prefill-pod" not in reply.headers


def test_prompts_sharing_a_prefix_are_prefilled_on_one_pod(
    local_fleet: Fleet, deployed: tuple[str, str]
) -> None:
    """The router's prefix affinity: 20 prompts with a common 1,200-character head and
    their own tails meet one prefill pod's prefix cache (at least 90% of them)."""
    namespace, address = deployed
    east = local_fleet.cluster("east")
    prefill = names(namespace, pods_of(east, namespace, "kimi-prefill"))
    client = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0)
    head = PROMPT + " " + PROMPT[:200]
    where = Counter(
        _completion_of(client, f"{head} Question {i}: what does note {i} say?") for i in range(20)
    )
    print(f"\nshared-prefix prompts by prefill pod: {dict(where)}")
    assert set(where) <= prefill, where
    assert where.most_common(1)[0][1] >= 18, where


def _completion_of(client: openai.OpenAI, prompt: str) -> str:
    """The prefill pod of a completion of `prompt`."""
    raw = client.completions.with_raw_response.create(model="kimi-k2", prompt=prompt, max_tokens=2)
    return raw.headers.get("x-modelplane-prefill-pod", "")


def test_a_prefill_pod_deleted_under_10_requests_per_second_fails_no_request(
    local_fleet: Fleet, deployed: tuple[str, str]
) -> None:
    namespace, address = deployed
    east = local_fleet.cluster("east")
    client = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0)
    results: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            has_text = _chat(client, stream=False)[2]
            outcome = "ok" if has_text else "empty"
        except openai.APIError as error:
            outcome = f"{type(error).__name__}: {error}"[:300]
        with lock:
            results.append(outcome)

    victim = pods_of(east, namespace, "kimi-prefill")[0]["metadata"]["name"]
    threads = []
    start = time.monotonic()
    for i in range(80):  # 8 s at 10 per second; the pod goes after 2 s
        time.sleep(max(0.0, start + i / 10 - time.monotonic()))
        if i == 20:
            east.kubectl("delete", "pod", "-n", namespace, victim, "--wait=false")
        thread = threading.Thread(target=one)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(60)
    failed = [r for r in results if r != "ok"]
    print(f"\n{len(failed)} of {len(results)} failed while prefill pod {victim} went")
    assert len(results) == 80
    assert failed == []
    wait_for(
        "the prefill Deployment back at two pods",
        lambda: len(pods_of(east, namespace, "kimi-prefill")) == 2,
        120,
    )
    assert victim not in {p["metadata"]["name"] for p in pods_of(east, namespace, "kimi-prefill")}
