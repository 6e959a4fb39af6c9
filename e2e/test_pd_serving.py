"""Issue 16: a PrefillDecode ModelDeployment served through the control plane on the local fleet.

The documentation's kimi-k2 recipe as `e2e.pdserving.kimi` adapts it: the prefill
engine (`kv_producer`, two copies) on one Hopper GPU each in east's `h100` pool, the
decode engine (`kv_consumer`, two copies) on one Ada GPU each in `l4`; the engines'
flags as written and no `ports` added (endpoint-manager finds the decode engine on
:8001 from its `--port=8001`, as the recipe says). Applied with kubectl as a
ModelDeployment plus the recipe's ModelService, with fleet-scheduler,
cluster-provisioner, endpoint-manager and gateway-config running as their own
processes: endpoint-manager renders both engines, a Service per phase and the
prefill/decode router (from `modelplane/modelplane`, which the node agent runs from
this checkout's environment) on east's system node, in-cluster credentials and all.

Requests go to the ModelService's address (the control cluster's front door) with
the official `openai` SDK (chat and completions, streamed and not) and the
`anthropic` SDK. The simulated engines' answer headers (`e2e.pdserving`) prove each
OpenAI request was prefilled on a prefill pod and decoded on a decode pod with valid
parameters; `/v1/messages` is answered by decode alone. Prompts sharing a long prefix
are prefilled on one pod (the router's prefix affinity). Then a prefill pod is
deleted while chat completions arrive at 10 per second: none fails. endpoint-manager
also serves KEDA's external scaler: with long completions in flight on both decode
pods, the scaler's `inFlight` for the deployment counts all of them (read from the
router's `/modelplane/load`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, is_ready, items, wait_for
from e2e.pdserving import (
    MESSAGES,
    PROMPT,
    address_of,
    answered,
    chat,
    completion,
    kimi,
    model_service,
    names,
    pods_of,
)
from e2e.services import (
    Service,
    gateway_config,
    grpc_client,
    placing_and_scaling,
    serving,
    tls_dir,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
FLEET_API_PORT = 50151
SCALER_PORT = 50153


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    scaler = f"{control.plan.address}:{SCALER_PORT}"
    running = {
        **placing_and_scaling(local_fleet, 9151, FLEET_API_PORT, scaler, logs),
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
    assert len(decode) == 2 and all(p["spec"]["nodeName"].startswith("east-l4-") for p in decode)
    # the recipe's decode engine listens where its `--port=8001` says, and is probed there
    for pod in decode:
        (engine,) = pod["spec"]["containers"]
        assert "ports" not in engine and "--port=8001" in engine["args"]
        assert engine["readinessProbe"]["httpGet"]["port"] == 8001
    assert [p["spec"]["nodeName"] for p in routers] == ["east-system-0"]
    # the router found both phases through the EndpointSlices it may read in-cluster
    router_ip = routers[0]["status"]["podIP"]
    page = httpx.get(f"http://{router_ip}:9090/metrics", timeout=10).text
    assert 'modelplane_pd_router_pods{phase="prefill"} 2.0' in page, page
    assert 'modelplane_pd_router_pods{phase="decode"} 2.0' in page, page


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
        for kind, call in (("chat", chat), ("completion", completion))
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
        completion_of(client, f"{head} Question {i}: what does note {i} say?") for i in range(20)
    )
    print(f"\nshared-prefix prompts by prefill pod: {dict(where)}")
    assert set(where) <= prefill, where
    assert where.most_common(1)[0][1] >= 18, where


def completion_of(client: openai.OpenAI, prompt: str) -> str:
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
            has_text = chat(client, stream=False)[2]
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


def test_the_scaler_counts_requests_on_every_decode_pod(
    local_fleet: Fleet, deployed: tuple[str, str]
) -> None:
    """Six long completions (2,000 tokens at the simulator's 5 ms: about 10 s each) through
    the front door spread over both decode pods; KEDA's view of the deployment
    (`GetMetrics` on endpoint-manager's scaler) counts all six, not one pod's share."""
    namespace, address = deployed
    east = local_fleet.cluster("east")
    target = f"{local_fleet.cluster('control').plan.address}:{SCALER_PORT}"
    certificate = str(tls_dir(local_fleet, "modelplane-cli"))

    def scaler() -> dict[str, Any]:
        return grpc_client("scaler-metrics", target, certificate, namespace, "kimi-k2")

    wait_for("the scaler at rest", lambda: scaler()["inFlight"] == 0, 30)
    streams, stop = 6, threading.Event()
    failed: list[str] = []

    def one(i: int) -> None:
        body = {"model": "kimi-k2", "prompt": f"{PROMPT} {i}", "max_tokens": 2000,
                "ignore_eos": True, "stream": True}  # fmt: skip
        try:
            with httpx.stream("POST", f"{address}/v1/completions", json=body, timeout=60) as r:
                for _ in r.iter_raw():
                    if stop.is_set():
                        return  # hang up: the router cancels the decode
        except httpx.HTTPError as error:
            failed.append(repr(error))

    decode = pods_of(east, namespace, "kimi-decode")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    asked: list[dict[str, Any]] = []
    try:

        def all_running() -> list[float] | None:
            running = _running_on(decode)
            return running if sum(running) == streams else None

        each = wait_for("the six running on the decode engines", all_running, 30, 0.5)
        assert all(n > 0 for n in each), each  # both pods carry some

        def counted() -> bool:
            asked.append(scaler())
            return bool(asked[-1]["inFlight"] == streams)

        wait_for("the scaler counting all six", counted, 20, 0.5)
        assert asked[-1]["active"] is True
        print(f"\ndecode pods running {each}; the scaler said {asked[-1]}")
    except TimeoutError as error:
        raise AssertionError(f"{error}; scaler said {asked[-3:]}; failed {failed[:3]}") from None
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failed == []


def _running_on(pods: list[Json]) -> list[float]:
    """`vllm:num_requests_running` of each decode engine, asked at its own pod (:8001)."""
    running = []
    for pod in pods:
        page = httpx.get(f"http://{pod['status']['podIP']}:8001/metrics", timeout=5).text
        running.append(sum(
            float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
            if line.startswith("vllm:num_requests_running")
        ))  # fmt: skip
    return running
