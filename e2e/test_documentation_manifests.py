"""The documentation's example manifests run on the local fleet as written.

The qwen3-8b example's engine template (a vLLM image with vLLM flags, no port
and no host) becomes a Deployment pinned to the `l4` pool, with a
ResourceClaimTemplate built from the member's device request, the way the
platform composes it. The node agent runs the image as the engine simulator on
the pod's IP and port 8000, honouring `--served-model-name`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from modelplane_localfleet.cluster import Cluster

from e2e.kube import Json, apply, is_ready, items, wait_for
from e2e.simulator import call
from e2e.test_dra_binding import claim_template

pytestmark = pytest.mark.usefixtures("local_fleet")
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests"


def qwen_deployment(namespace: str) -> tuple[Json, Json]:
    manifest = yaml.safe_load(
        (SEED / "examples" / "qwen3-8b" / "model-deployment.yaml").read_text()
    )
    member = manifest["spec"]["engines"][0]["members"][0]
    device = member["nodeSelector"]["devices"][0]
    selector = device["selectors"][0]["cel"].strip()
    template = copy.deepcopy(member["template"])
    spec = template["spec"]
    spec["nodeSelector"] = {"modelplane.ai/pool": "l4"}
    spec["resourceClaims"] = [{"name": device["name"], "resourceClaimTemplateName": "qwen-gpu"}]
    engine = spec["containers"][0]
    engine["resources"] = {"claims": [{"name": device["name"]}]}
    engine["readinessProbe"] = {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 1}
    template["metadata"] = {"labels": {"app": "qwen3-8b"}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "qwen3-8b", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "qwen3-8b"}},
            "template": template,
        },
    }
    claim = claim_template("qwen-gpu", namespace, selector, count=device["count"])
    return claim, deployment


def test_the_qwen3_8b_engine_template_serves_a_chat_completion(
    east: Cluster, east_namespace: str
) -> None:
    claim, deployment = qwen_deployment(east_namespace)
    apply(east, claim, deployment)

    def ready_pod() -> Json | None:
        pods = items(east, "pods", "-n", east_namespace, "-l", "app=qwen3-8b")
        return next((p for p in pods if is_ready(p)), None)

    pod = wait_for("the qwen3-8b pod Ready", ready_pod, timeout_s=60)
    assert pod["spec"]["nodeName"].startswith("east-l4-")
    address = pod["status"]["podIP"]
    reply = call(
        f"http://{address}:8000/v1/chat/completions",
        {"model": "qwen", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8},
    )
    assert reply.status == 200, reply
    assert reply.body["model"] == "qwen"
    assert reply.body["choices"][0]["message"]["content"]
    assert (reply.pod, reply.pod_ip) == (f"{east_namespace}/{pod['metadata']['name']}", address)
    models = call(f"http://{address}:8000/v1/models")
    assert [m["id"] for m in models.body["data"]] == ["qwen"]


def kimi_pods(namespace: str) -> dict[str, Json]:
    """The kimi-k2 example's prefill and decode engine templates as plain pods. The recipe
    serves `/mnt/models`, its ModelCache's mount; these pods have no cache mounted, so the
    path becomes a model name (the simulator would refuse a path holding no model)."""
    manifest = yaml.safe_load((SEED / "examples" / "kimi-k2" / "model-deployment.yaml").read_text())
    pods = {}
    for engine in manifest["spec"]["engines"]:
        spec = copy.deepcopy(engine["members"][0]["template"]["spec"])
        command = spec["containers"][0]["command"]
        assert command == ["vllm", "serve", "/mnt/models"], command
        spec["containers"][0]["command"] = ["vllm", "serve", "moonshotai/Kimi-K2-Instruct"]
        spec["nodeSelector"] = {"modelplane.ai/pool": "h100"}
        spec["terminationGracePeriodSeconds"] = 2
        port = next(
            int(a.split("=")[1]) for a in spec["containers"][0]["args"] if a.startswith("--port=")
        )
        spec["containers"][0]["readinessProbe"] = {
            "httpGet": {"path": "/health", "port": port},
            "periodSeconds": 1,
        }
        pods[engine["phase"]] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": engine["name"], "namespace": namespace},
            "spec": spec,
        }
    return pods


def test_the_kimi_k2_prefill_and_decode_engines_hand_over_kv_between_pods(
    east: Cluster, east_namespace: str
) -> None:
    pods = kimi_pods(east_namespace)
    token = {"apiVersion": "v1", "kind": "Secret", "stringData": {"HF_TOKEN": "hf_test"},
             "metadata": {"name": "hf-token", "namespace": east_namespace}}  # fmt: skip
    apply(east, token, *pods.values())

    def both_ready() -> dict[str, Json] | None:
        found = {p["metadata"]["name"]: p for p in items(east, "pods", "-n", east_namespace)}
        ready = {n: p for n, p in found.items() if is_ready(p)}
        return ready if len(ready) == 2 else None

    ready = wait_for("prefill and decode Ready", both_ready, timeout_s=60)
    prefill_ip = ready["kimi-prefill"]["status"]["podIP"]
    decode_ip = ready["kimi-decode"]["status"]["podIP"]
    assert prefill_ip != decode_ip
    request = {"model": "kimi-k2", "messages": [{"role": "user", "content": "long prompt here"}]}
    prefill = call(
        f"http://{prefill_ip}:8000/v1/chat/completions",
        {**request, "max_tokens": 1, "kv_transfer_params": {"do_remote_decode": True}},
    )
    assert prefill.status == 200, prefill
    params = prefill.body["kv_transfer_params"]
    assert (params["remote_host"], params["do_remote_prefill"]) == (prefill_ip, True)
    decode = call(
        f"http://{decode_ip}:8001/v1/chat/completions",
        {**request, "max_tokens": 8, "kv_transfer_params": params},
    )
    assert decode.status == 200, decode
    assert (decode.pod, decode.pod_ip) == (f"{east_namespace}/kimi-decode", decode_ip)
    assert decode.headers["x-modelplane-prefill-pod"] == f"{east_namespace}/kimi-prefill"
    again = call(
        f"http://{decode_ip}:8001/v1/chat/completions",
        {**request, "max_tokens": 8, "kv_transfer_params": params},
    )
    assert again.status == 400, "blocks are handed over once"
    assert f"{prefill_ip}:" in again.body["error"]["message"]
