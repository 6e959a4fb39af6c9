"""The runtime map: which container images the agent can run, and as what command (pure).

Images in a fleet registry run from their own content (`images`, `chroot`);
no reachable registry holds the engines' images, so those in `RUNTIME_MAP`
become local processes: our engine simulator, and vLLM and SGLang images,
which run the simulator in their place. `plan` reads the container's command line the way
the image would run it (entrypoint, `sh -c` scripts with `exec`, `$VAR`
references), picks out the engine's flags (`--model`/`--model-path` or vLLM's
positional model, `--served-model-name`, `--port`, `--kv-transfer-config`, and
vLLM's multi-node `--nnodes`/`--node-rank`/`--master-addr`) and returns the
simulator's command line, always bound to the pod IP whatever `--host` says.
`modelplane/python-probe` runs its command with the agent's own Python in
place of `python`/`python3` (for tests of what a pod sees);
`modelplane/modelplane` (the control plane's image, as the harness names it
when it does not push one: endpoint-manager's default `--router-image`) runs
its `modelplane-*` console script from the agent's own environment. An image it does
not know gives `Unknown`, with the reason for the pod's event.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME_MAP = {
    # image repository (any registry prefix of Docker Hub dropped) -> what runs in its place;
    # tools/localfleet/README.md shows the same table.
    "modelplane/enginesim": "simulator",
    "ghcr.io/modelplane/enginesim": "simulator",
    "vllm/vllm-openai": "vllm",
    "vllm/vllm-openai-rocm": "vllm",
    "vllm/vllm-tpu": "vllm",
    "lmsysorg/sglang": "sglang",
    "modelplane/python-probe": "python",
    "modelplane/modelplane": "modelplane",
}
_PYTHONS = {"python", "python3", "/usr/bin/python3", "/usr/local/bin/python"}
VLLM_ENTRYPOINT = ("vllm", "serve")
VLLM_PORT = 8000
SGLANG_PORT = 30000
KV_ROLES = {"kv_producer": "producer", "kv_consumer": "consumer", "kv_both": "both"}
# Pod env that tunes the simulator (a real engine ignores it).
TUNING_ENV = {
    "ENGINESIM_TTFT_MS": "--ttft-ms",
    "ENGINESIM_TPOT_MS": "--tpot-ms",
    "ENGINESIM_MAX_CONCURRENCY": "--max-concurrency",
    "ENGINESIM_STARTUP_DELAY_MS": "--startup-delay-ms",
    "ENGINESIM_LOAD_RATE_MIB_S": "--load-rate-mib-s",
}
_SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash", "/usr/bin/bash", "/usr/bin/env"}
_SHELL_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Launch:
    """Run `argv` for this container; `port` is where the engine listens."""

    argv: tuple[str, ...]
    port: int
    engine: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """No local command for this container; `reason` goes into the pod's event."""

    reason: str


def repository(image: str) -> str:
    """`docker.io/vllm/vllm-openai:v1@sha256:..` -> `vllm/vllm-openai`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name.removeprefix("library/")


def engine_of(image: str) -> str | None:
    return RUNTIME_MAP.get(repository(image))


def command_line(container: Mapping[str, Any], engine: str) -> list[str]:
    """What the container runs: its command (or the image entrypoint) and args."""
    command = [str(a) for a in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if command:
        return command + args
    if engine == "vllm":
        return [*VLLM_ENTRYPOINT, *args]
    return args


def unwrap_shell(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """`sh -c SCRIPT`: the engine command inside the script, with `$VAR`s expanded."""
    if len(argv) < 3 or argv[0] not in _SHELLS or argv[1] != "-c":
        return list(argv)
    script = _SHELL_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), argv[2])
    commands = [c.strip() for c in re.split(r"&&|\|\||;|\n", script) if c.strip()]
    for text in reversed(commands):
        words = shlex.split(text)
        if words and words[0] == "exec":
            words = words[1:]
        if _engine_start(words) is not None:
            return words
    return shlex.split(commands[-1]) if commands else []


def _engine_start(words: Sequence[str]) -> int | None:
    """Index of the first engine flag or positional in `words`, if they start an engine."""
    for i, word in enumerate(words):
        if word == "serve" and i > 0 and words[i - 1].endswith("vllm"):
            return i + 1
        if word in ("vllm.entrypoints.openai.api_server", "sglang.launch_server"):
            return i + 1
        if word.endswith("modelplane_enginesim") or word.endswith("modelplane-enginesim"):
            return i + 1
    return None


def parse_flags(words: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Positionals and `--flag value`/`--flag=value` pairs (a bare flag maps to [])."""
    positionals: list[str] = []
    flags: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            name = name.replace("_", "-")
            if eq:
                flags.setdefault(name, []).append(value)
            else:
                values = []
                while i + 1 < len(words) and not words[i + 1].startswith("-"):
                    values.append(words[i + 1])
                    i += 1
                flags.setdefault(name, []).extend(values)
                if not values:
                    flags.setdefault(name, [])
        else:
            positionals.append(word)
        i += 1
    return positionals, flags


def _python(container: Mapping[str, Any]) -> Launch | Unknown:
    words = command_line(container, "python")
    if not words or words[0] not in _PYTHONS:
        command = shlex.join(words)
        return Unknown(f"modelplane/python-probe runs `python ...` commands, not {command!r}")
    return Launch((sys.executable, *words[1:]), 0, "python")


def _modelplane(container: Mapping[str, Any]) -> Launch | Unknown:
    words = command_line(container, "modelplane")
    if not words or not re.fullmatch(r"modelplane(-[a-z-]+)?", words[0]):
        command = shlex.join(words)
        return Unknown(
            f"modelplane/modelplane runs its `modelplane-*` console scripts, not {command!r}"
        )
    script = Path(sys.executable).parent / words[0]
    return Launch((str(script), *words[1:]), 0, "modelplane")


def plan(container: Mapping[str, Any], env: Mapping[str, str], pod_ip: str) -> Launch | Unknown:
    image = str(container.get("image", ""))
    engine = engine_of(image)
    if engine == "python":
        return _python(container)
    if engine == "modelplane":
        return _modelplane(container)
    if engine is None:
        return Unknown(
            f"image {image!r} has no local command in the local fleet (it runs vLLM, SGLang "
            "and modelplane/enginesim images as the engine simulator; images in a fleet "
            "registry run from their own content)"
        )
    words = unwrap_shell(command_line(container, engine), env)
    start = _engine_start(words)
    if start is None and engine == "simulator":
        start = 0
    if start is None:
        return Unknown(f"image {image!r}: cannot find the engine command in {shlex.join(words)!r}")
    positionals, flags = parse_flags(words[start:])
    default_port = SGLANG_PORT if engine == "sglang" else VLLM_PORT
    model = _last(flags, "model") or _last(flags, "model-path") or next(iter(positionals), None)
    port_text = _last(flags, "port") or str(default_port)
    if not port_text.isdigit():
        return Unknown(f"image {image!r}: --port {port_text!r} is not a port number")
    port = int(port_text)
    argv = [sys.executable, "-m", "modelplane_enginesim", "--host", pod_ip, "--port", str(port)]
    if model:
        argv += ["--model", model]
    names = flags.get("served-model-name") or []
    if names:
        argv += ["--served-model-name", *names]
    kv_role = _kv_role(_last(flags, "kv-transfer-config"))
    if kv_role:
        argv += ["--kv-role", kv_role]
    nodes = int(_last(flags, "nnodes") or 1)
    if nodes > 1:
        argv += ["--group-size", str(nodes), "--worker-index", _last(flags, "node-rank") or "0"]
        if _last(flags, "master-addr"):
            argv += ["--leader-address", str(_last(flags, "master-addr"))]
    for variable, flag in TUNING_ENV.items():
        if variable in env:
            argv += [flag, env[variable]]
    if engine == "simulator":
        argv += _passthrough(flags)
    return Launch(tuple(argv), port, engine)


def _last(flags: Mapping[str, list[str]], name: str) -> str | None:
    values = flags.get(name)
    return values[-1] if values else None


def _kv_role(config: str | None) -> str | None:
    if not config:
        return None
    try:
        role = json.loads(config).get("kv_role")
    except (ValueError, AttributeError):
        return None
    return KV_ROLES.get(str(role))


_HANDLED = {"host", "port", "model", "model-path", "served-model-name", "kv-transfer-config"}


def _passthrough(flags: Mapping[str, list[str]]) -> list[str]:
    """The simulator image's own flags (other than the ones handled above), unchanged."""
    out = []
    for name, values in flags.items():
        if name in _HANDLED:
            continue
        out += [f"--{name}", *values]
    return out
