"""The runtime map: engine images become the simulator, bound to the pod IP, flags honoured."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from modelplane_localfleet.nodeagent.runtime import Launch, Unknown, plan, repository

SIM = (sys.executable, "-m", "modelplane_enginesim", "--host", "10.244.16.2")


@pytest.mark.parametrize(
    ("image", "repo"),
    [
        ("vllm/vllm-openai:v0.23.0", "vllm/vllm-openai"),
        ("docker.io/vllm/vllm-openai@sha256:abc", "vllm/vllm-openai"),
        ("docker.io/library/busybox:1.36", "busybox"),
        ("localhost:5000/lmsysorg/sglang:latest", "localhost:5000/lmsysorg/sglang"),
        ("lmsysorg/sglang:v0.5.5-cu129", "lmsysorg/sglang"),
    ],
)
def test_the_repository_drops_registry_defaults_tags_and_digests(image: str, repo: str) -> None:
    assert repository(image) == repo


CASES: list[tuple[str, dict[str, Any], dict[str, str], Launch | Unknown]] = [
    (
        "the documentation's vLLM args: model and served name kept, host forced to the pod IP",
        {
            "image": "vllm/vllm-openai:v0.23.0",
            "args": ["--model=Qwen/Qwen3-8B", "--served-model-name=qwen", "--host", "0.0.0.0"],
        },
        {},
        Launch(
            (*SIM, "--port", "8000", "--model", "Qwen/Qwen3-8B", "--served-model-name", "qwen"),
            8000,
            "vllm",
        ),
    ),
    (
        "vllm serve with a positional model, several served names and a port",
        {
            "image": "vllm/vllm-openai:v0.23.0",
            "command": ["vllm", "serve", "/mnt/models"],
            "args": ["--served-model-name", "a", "b", "--port=8001", "--tensor-parallel-size=8"],
        },
        {},
        Launch(
            (*SIM, "--port", "8001", "--model", "/mnt/models", "--served-model-name", "a", "b"),
            8001,
            "vllm",
        ),
    ),
    (
        "a prefill engine's kv-transfer-config becomes the producer role",
        {
            "image": "vllm/vllm-openai:v0.23.0",
            "command": ["vllm", "serve", "m"],
            "args": [
                '--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_producer"}'
            ],
        },
        {},
        Launch((*SIM, "--port", "8000", "--model", "m", "--kv-role", "producer"), 8000, "vllm"),
    ),
    (
        "a multi-node sh -c script: exec unwrapped, $(VAR) already expanded, rank and leader kept",
        {
            "image": "vllm/vllm-openai:v0.23.0",
            "command": [
                "/bin/sh",
                "-c",
                "echo start && exec vllm serve /mnt/models "
                "--served-model-name=coder --nnodes=2 --node-rank=1 "
                "--master-addr=$LEADER --headless",
            ],
        },
        {"LEADER": "lws-0.lws.ml"},
        Launch(
            (
                *SIM,
                "--port",
                "8000",
                "--model",
                "/mnt/models",
                "--served-model-name",
                "coder",
                "--group-size",
                "2",
                "--worker-index",
                "1",
                "--leader-address",
                "lws-0.lws.ml",
            ),
            8000,
            "vllm",
        ),
    ),
    (
        "SGLang spellings and its default port",
        {
            "image": "lmsysorg/sglang:latest",
            "command": ["python3", "-m", "sglang.launch_server"],
            "args": [
                "--model-path",
                "Qwen/Qwen3-8B",
                "--served-model-name",
                "qwen",
                "--host",
                "0.0.0.0",
            ],
        },
        {},
        Launch(
            (*SIM, "--port", "30000", "--model", "Qwen/Qwen3-8B", "--served-model-name", "qwen"),
            30000,
            "sglang",
        ),
    ),
    (
        "the simulator image passes its own flags and the pod's tuning env",
        {"image": "modelplane/enginesim:dev", "args": ["--model=m", "--group-port=29600"]},
        {"ENGINESIM_TTFT_MS": "50"},
        Launch(
            (*SIM, "--port", "8000", "--model", "m", "--ttft-ms", "50", "--group-port", "29600"),
            8000,
            "simulator",
        ),
    ),
    (
        "a model folder on a claim, read at the pod's load rate",
        {"image": "vllm/vllm-openai:v0.11.0", "args": ["--model", "/mnt/models"]},
        {"ENGINESIM_LOAD_RATE_MIB_S": "64"},
        Launch(
            (*SIM, "--port", "8000", "--model", "/mnt/models", "--load-rate-mib-s", "64"),
            8000,
            "vllm",
        ),
    ),
    (
        "an image the fleet does not know runs nothing, and says so",
        {"image": "nginx:1.27"},
        {},
        Unknown(
            "image 'nginx:1.27' has no local command in the local fleet (it runs vLLM, SGLang "
            "and modelplane/enginesim images as the engine simulator; images in a fleet "
            "registry run from their own content)"
        ),
    ),
]


@pytest.mark.parametrize(("name", "container", "env", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan(
    name: str, container: dict[str, Any], env: dict[str, str], expected: Launch | Unknown
) -> None:
    assert plan(container, env, "10.244.16.2") == expected


def test_a_port_that_is_not_a_number_is_reported_not_raised() -> None:
    container = {"image": "vllm/vllm-openai:v0.23.0", "args": ["--port=$(UNSET)"]}
    assert plan(container, {}, "10.244.16.2") == Unknown(
        "image 'vllm/vllm-openai:v0.23.0': --port '$(UNSET)' is not a port number"
    )


def test_the_python_probe_image_runs_its_command_with_the_agents_python() -> None:
    container = {"image": "modelplane/python-probe:1", "command": ["python3", "-c", "print(1)"]}
    launch = plan(container, {}, "10.244.0.2")
    assert isinstance(launch, Launch)
    assert launch.argv == (sys.executable, "-c", "print(1)")
    refused = plan({"image": "modelplane/python-probe", "command": ["sh"]}, {}, "10.244.0.2")
    assert isinstance(refused, Unknown)
    assert "runs `python ...` commands" in refused.reason


def test_the_control_plane_image_runs_its_console_script_from_the_agents_environment() -> None:
    container = {
        "image": "modelplane/modelplane:latest",
        "command": ["modelplane-pd-router"],
        "args": ["--namespace=ml-team", "--listen=$(POD_IP):8000"],
    }
    launch = plan(container, {}, "10.244.0.2")
    assert isinstance(launch, Launch)
    script = Path(sys.executable).parent / "modelplane-pd-router"
    assert launch.argv == (str(script), "--namespace=ml-team", "--listen=$(POD_IP):8000")
    assert script.is_file()  # the router is installed beside the agent's Python
    refused = plan({"image": "modelplane/modelplane", "command": ["sh", "-c", "x"]}, {}, "10.0.0.2")
    assert isinstance(refused, Unknown)
    assert "console scripts" in refused.reason
