"""The command line: flags, their environment defaults, and the checks between them.

Guarantees: `parse_settings` reads only `argv` and the `env` it is given (so
tests need no process environment); a bad value, from a flag or from the
environment, stops with argparse's usage error naming it; `main` exits with
the server's exit code (0 after SIGTERM). A `--model` that is a folder is
loaded first (`weights`: config.json and every safetensors file read whole,
at most `--load-rate-mib-s`); a folder without a loadable model exits 1 with
an error naming the file, before anything listens. Without `--tls-cert` the process never
loads `ssl` (about 4.5 MB of resident OpenSSL a plain engine does not need).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from modelplane_enginesim import weights
from modelplane_enginesim.config import KV_ROLES, Identity, KvRole, Settings

MIB = 1 << 20


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelplane-enginesim",
        description="Serve what a vLLM or SGLang engine serves, without a GPU.",
    )
    p.add_argument("--host", required=True, help="address to bind (the pod IP)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (0: any free port)")
    p.add_argument(
        "--model",
        default="simulated-model",
        help="a model name, or a folder (/mnt/models, ./m): its config.json and safetensors "
        "files are checked and read before serving",
    )
    p.add_argument("--served-model-name", nargs="+", help="names accepted (default: --model)")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    p.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    identity = p.add_argument_group("identity")
    identity.add_argument("--pod-name", help="default $MODELPLANE_POD_NAME, else the hostname")
    identity.add_argument("--pod-namespace", help="default $MODELPLANE_POD_NAMESPACE, else default")
    identity.add_argument("--pod-ip", help="default $MODELPLANE_POD_IP, else --host")
    timing = p.add_argument_group("engine")
    timing.add_argument("--ttft-ms", type=float, default=20.0, help="time to first token")
    timing.add_argument("--tpot-ms", type=float, default=5.0, help="time per output token")
    timing.add_argument(
        "--prefill-ms-per-token",
        type=float,
        default=0.0,
        help="added to the time to first token per prompt token not in the prefix cache",
    )
    timing.add_argument(
        "--prefix-cache-blocks", type=int, default=4096, help="prefix cache size (LRU)"
    )
    timing.add_argument("--max-concurrency", type=int, default=64, help="requests generating")
    timing.add_argument("--max-model-len", type=int, default=4096)
    timing.add_argument("--startup-delay-ms", type=float, default=0.0, help="/health 503 until")
    timing.add_argument(
        "--load-rate-mib-s",
        type=float,
        help="read a model folder at most this fast (default: as fast as the disk reads)",
    )
    kv = p.add_argument_group("prefill/decode")
    kv.add_argument("--kv-role", choices=KV_ROLES, default="none")
    kv.add_argument("--side-channel-host", help="default $VLLM_NIXL_SIDE_CHANNEL_HOST, else pod IP")
    kv.add_argument(
        "--side-channel-port", type=int, help="default $VLLM_NIXL_SIDE_CHANNEL_PORT/5600"
    )
    kv.add_argument("--engine-id", help="KV engine id (default: a random UUID)")
    kv.add_argument(
        "--kv-lease-ms", type=float, default=120_000.0, help="a prefill's blocks expire after"
    )
    group = p.add_argument_group("leader/worker group")
    group.add_argument("--group-size", type=int, help="default $LWS_GROUP_SIZE, else 1")
    group.add_argument("--worker-index", type=int, help="default $LWS_WORKER_INDEX, else 0")
    group.add_argument("--leader-address", help="default $LWS_LEADER_ADDRESS")
    group.add_argument("--group-port", type=int, default=29500)
    return p


def _env_int(
    parser: argparse.ArgumentParser, env: Mapping[str, str], name: str, default: int
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        parser.error(f"environment {name}={raw!r} is not an integer")


def _uuid() -> str:
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def parse_settings(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    parser = build_parser()
    a = parser.parse_args(argv)
    pod = Identity(
        namespace=a.pod_namespace or env.get("MODELPLANE_POD_NAMESPACE") or "default",
        name=a.pod_name or env.get("MODELPLANE_POD_NAME") or socket.gethostname(),
        ip=a.pod_ip or env.get("MODELPLANE_POD_IP") or a.host,
    )
    group_size = a.group_size
    if group_size is None:
        group_size = _env_int(parser, env, "LWS_GROUP_SIZE", 1)
    worker_index = a.worker_index
    if worker_index is None:
        worker_index = _env_int(parser, env, "LWS_WORKER_INDEX", 0)
    side_port = a.side_channel_port
    if side_port is None:
        side_port = _env_int(parser, env, "VLLM_NIXL_SIDE_CHANNEL_PORT", 5600)
    leader = a.leader_address or env.get("LWS_LEADER_ADDRESS") or None
    checks = [
        (0 <= a.port < 65536, f"--port {a.port} is not a port"),
        (0 <= side_port < 65536, f"side channel port {side_port} is not a port"),
        (0 <= a.group_port < 65536, f"--group-port {a.group_port} is not a port"),
        ((a.tls_cert is None) == (a.tls_key is None), "--tls-cert and --tls-key go together"),
        (a.max_concurrency >= 1, "--max-concurrency must be at least 1"),
        (a.max_model_len >= 1, "--max-model-len must be at least 1"),
        (
            min(a.ttft_ms, a.tpot_ms, a.startup_delay_ms, a.prefill_ms_per_token) >= 0,
            "times must not be negative",
        ),
        (a.kv_lease_ms > 0, "--kv-lease-ms must be positive"),
        (
            a.load_rate_mib_s is None or a.load_rate_mib_s > 0,
            "--load-rate-mib-s must be positive",
        ),
        (a.prefix_cache_blocks >= 0, "--prefix-cache-blocks must not be negative"),
        (group_size >= 1, f"group size {group_size} must be at least 1"),
        (
            0 <= worker_index < group_size,
            f"worker index {worker_index} is out of range for group size {group_size}",
        ),
        (
            worker_index == 0 or leader is not None,
            f"worker {worker_index} needs --leader-address (or $LWS_LEADER_ADDRESS)",
        ),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    kv_role: KvRole = a.kv_role
    return Settings(
        host=a.host,
        port=a.port,
        model=a.model,
        served_model_names=tuple(a.served_model_name or [a.model]),
        pod=pod,
        ttft_ms=a.ttft_ms,
        tpot_ms=a.tpot_ms,
        prefill_ms_per_token=a.prefill_ms_per_token,
        prefix_cache_blocks=a.prefix_cache_blocks,
        max_concurrency=a.max_concurrency,
        max_model_len=a.max_model_len,
        startup_delay_ms=a.startup_delay_ms,
        kv_role=kv_role,
        side_channel_host=a.side_channel_host or env.get("VLLM_NIXL_SIDE_CHANNEL_HOST") or pod.ip,
        side_channel_port=side_port,
        engine_id=a.engine_id or _uuid(),
        kv_lease_s=a.kv_lease_ms / 1000,
        group_size=group_size,
        worker_index=worker_index,
        leader_address=leader,
        group_port=a.group_port,
        tls_cert=a.tls_cert,
        tls_key=a.tls_key,
        served_names_given=bool(a.served_model_name),
        load_rate_mib_s=a.load_rate_mib_s,
    )


def _without_tls() -> None:
    """Keep asyncio from loading `ssl` (about 4.5 MB of resident OpenSSL): no TLS here.

    Only when nothing has imported asyncio or ssl yet, i.e. in the simulator's own process.
    """
    if "ssl" not in sys.modules and "asyncio" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]


def load_model(settings: Settings) -> Settings:
    """Load a model folder (`weights`) and serve it under its name; exits 1 naming the file
    when the folder does not hold a loadable model. A model name is returned unchanged."""
    if not weights.is_path(settings.model):
        return settings
    rate = settings.load_rate_mib_s * MIB if settings.load_rate_mib_s else None
    try:
        loaded = weights.load(Path(settings.model), rate)
    except weights.WeightsError as error:
        print(f"modelplane-enginesim: error: cannot load the model: {error}", file=sys.stderr)
        sys.exit(1)
    print(
        f"loaded {loaded.folder}: {len(loaded.files)} safetensors files, {loaded.tensors} "
        f"tensors, {loaded.bytes_read / MIB:.1f} MiB in {loaded.seconds:.2f}s; serving "
        f"{loaded.name}",
        flush=True,
    )
    if settings.served_names_given:
        return settings
    return replace(settings, served_model_names=(loaded.name,))


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_model(parse_settings(argv, os.environ))
    if settings.tls_cert is None:
        _without_tls()
    from modelplane_enginesim import server

    sys.exit(server.run(settings))
