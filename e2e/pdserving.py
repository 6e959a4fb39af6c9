"""The documentation's kimi-k2 PrefillDecode recipe as e2e tests run it, and how they tell
where an answer was prefilled and decoded.

`kimi` is the recipe's ModelDeployment (seed manifests, `examples/kimi-k2`) with sizes
adapted to `e2e/fleet.yaml`: each engine claims one GPU (prefill a Hopper, decode an
Ada) with its copies from `sizes`, placed on east (`clusterSelector` us-east); no
ModelCache and no HF token (the engines are the simulator, which fetches nothing; the
engine serves the model's name instead of the cache's mount). The engines' flags stay
as written and no `ports` are added: endpoint-manager reads each engine's port from its
`--port=`.

The simulated decode engine names the prefill pod it fetched the KV blocks from
(`X-Modelplane-Prefill-Pod`) only after the fetch succeeded (forged, expired or missing
parameters are a 400), and itself in `X-Modelplane-Pod`: `chat` and `completion` return
both, so a test can check every OpenAI request was prefilled on a prefill pod and decoded
on a decode pod with valid parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml
from modelplane_localfleet.cluster import Cluster

from e2e.kube import Json, get, is_ready, items

RECIPE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests" / "examples"
KIMI = RECIPE / "kimi-k2"
HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
ADA = 'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"'
SIZES = {"kimi-prefill": (HOPPER, 2), "kimi-decode": (ADA, 2)}
"""Per engine: the GPU it claims (one) and its copies."""
# Long enough (> the router's 512-character threshold) to be prefilled remotely.
PROMPT = "Summarise the following design notes for a new engineer. " + " ".join(
    f"Note {i}: the router sends the prompt to a prefill pod first, then to a decode pod."
    for i in range(12)
)
MESSAGES: Any = [{"role": "user", "content": PROMPT}]


def kimi(namespace: str, sizes: Mapping[str, tuple[str, int]] = SIZES) -> Json:
    """The recipe's ModelDeployment in `namespace` with `sizes` (per engine: the GPU it
    claims, one, and its copies) and the changes the module docstring lists."""
    manifest: Json = yaml.safe_load((KIMI / "model-deployment.yaml").read_text())
    manifest["metadata"]["namespace"] = namespace
    del manifest["spec"]["modelCacheRef"]
    manifest["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    for engine in manifest["spec"]["engines"]:
        cel, copies = sizes[engine["name"]]
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
    """The recipe's ModelService (`kimi-k2`) in `namespace`."""
    manifest: Json = yaml.safe_load((KIMI / "model-service.yaml").read_text())
    manifest["metadata"]["namespace"] = namespace
    return manifest


def pods_of(east: Cluster, namespace: str, engine: str) -> list[Json]:
    """The engine's Ready pods on `east` that are not being deleted."""
    return [
        p
        for p in items(east, "pods", "-n", namespace, "-l", f"modelplane.ai/engine={engine}")
        if is_ready(p) and not p["metadata"].get("deletionTimestamp")
    ]


def names(namespace: str, pods: list[Json]) -> set[str]:
    """`namespace/pod`, as the simulated engines name themselves in their answers."""
    return {f"{namespace}/{p['metadata']['name']}" for p in pods}


def seen(headers: Mapping[str, str], text: str) -> tuple[str, str, bool]:
    """(decode pod, prefill pod, whether the answer had text) of one answer."""
    return (
        headers.get("x-modelplane-pod", ""),
        headers.get("x-modelplane-prefill-pod", ""),
        bool(text),
    )


def chat(client: openai.OpenAI, stream: bool) -> tuple[str, str, bool]:
    """(decode pod, prefill pod, whether it had text) of a chat completion of `PROMPT`."""
    chat = client.chat.completions.with_raw_response
    if stream:
        chunks = chat.create(model="kimi-k2", messages=MESSAGES, max_tokens=8, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks.parse() if c.choices)
        return seen(chunks.headers, text)
    whole = chat.create(model="kimi-k2", messages=MESSAGES, max_tokens=8)
    return seen(whole.headers, whole.parse().choices[0].message.content or "")


def completion(client: openai.OpenAI, stream: bool) -> tuple[str, str, bool]:
    """(decode pod, prefill pod, whether it had text) of a completion of `PROMPT`."""
    completions = client.completions.with_raw_response
    if stream:
        chunks = completions.create(model="kimi-k2", prompt=PROMPT, max_tokens=8, stream=True)
        return seen(chunks.headers, "".join(c.choices[0].text for c in chunks.parse() if c.choices))
    whole = completions.create(model="kimi-k2", prompt=PROMPT, max_tokens=8)
    return seen(whole.headers, whole.parse().choices[0].text)


def address_of(control: Cluster, namespace: str) -> str | None:
    """The `kimi-k2` ModelService's front-door address, once it has one."""
    found = get(control, "modelservice", "-n", namespace, "kimi-k2")
    return (found.get("status") or {}).get("address")


def answered(address: str) -> bool:
    """Whether a short completion through `address` succeeds."""
    try:
        return httpx.post(
            f"{address}/v1/completions",
            json={"model": "kimi-k2", "prompt": "hi", "max_tokens": 2},
            timeout=10,
        ).is_success
    except httpx.HTTPError:
        return False
