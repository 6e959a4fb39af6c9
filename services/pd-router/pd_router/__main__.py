"""`modelplane-pd-router` (or `python -m pd_router`): run the prefill/decode router.

It proxies `--listen` to the replica's engines: OpenAI requests are prefilled
on a prefill pod and decoded on a decode pod, everything else goes to a decode
pod. Each phase's pods are the ready endpoints of a Service in `--namespace`
(`--prefill-service`, `--decode-service`; EndpointSlices, watched) or a fixed
list (`--prefill-pods`, `--decode-pods`: `host:port,...`). `/metrics`,
`/healthz` and `/readyz` are served on `--status-address`. JSON log lines go to
stderr. On SIGTERM or SIGINT it drains: `/readyz` fails at once, new connections
are refused, requests in flight (streams included) get up to `--shutdown-grace`
seconds to finish, then it exits with status 0. It runs on uvloop unless
`--event-loop asyncio`. `--workers N` runs N router processes on one port under
a supervisor (`pd_router.workers`). Exit status 2 when the command
line is unusable, naming the flag.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import uvloop
from modelplane import logs

from pd_router.app import Config, Source, serve
from pd_router.handoff import Tuning
from pd_router.pods import parse_address, parse_static

log = logging.getLogger("pd_router")


TUNING_FLAGS = (
    ("--min-prefill-chars", "min_prefill_chars", int,
     "prompts shorter than this (characters) skip the prefill pod"),
    ("--block-chars", "block_chars", int, "prefix affinity: characters per prompt block"),
    ("--prefix-blocks", "prefix_blocks", int, "prefix affinity: leading blocks hashed"),
    ("--balance", "balance", float,
     "prefill load bound: a pod takes at most balance x the mean in-flight (>= 1)"),
    ("--prefill-timeout", "prefill_timeout_s", float, "seconds a prefill may take"),
    ("--decode-timeout", "decode_timeout_s", float, "seconds to a decode pod's response head"),
)  # fmt: skip
"""Flag, `Tuning` field, type, help: the thresholds, each a flag of its own."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane-pd-router", description=__doc__)
    p.add_argument("--listen", default="0.0.0.0:8000", help="host:port of the proxy")
    p.add_argument("--status-address", default="0.0.0.0:9090", help="/metrics, /healthz, /readyz")
    p.add_argument("--namespace", default="default", help="where the engines' Services are")
    p.add_argument("--kubeconfig", help="the cluster of the Services (default: in-cluster)")
    for phase in ("prefill", "decode"):
        p.add_argument(f"--{phase}-service", help=f"the Service of the {phase} engines")
        p.add_argument(f"--{phase}-pods", help=f"fixed {phase} engines instead: host:port,...")
    p.add_argument("--port-name", default="http", help="the engines' port in the EndpointSlices")
    defaults = Tuning()
    for flag, field, kind, text in TUNING_FLAGS:
        p.add_argument(flag, dest=field, type=kind, default=getattr(defaults, field), help=text)
    p.add_argument(
        "--prefill-policy", choices=("prefix", "round-robin"), default=defaults.prefill_policy,
        help="prefill choice: prefix affinity with bounded load, or round-robin (to compare)",
    )  # fmt: skip
    p.add_argument("--scrape-interval", type=float, default=1.0, help="s between /metrics reads")
    p.add_argument("--max-body-mib", type=float, default=64.0, help="larger request bodies get 413")
    p.add_argument(
        "--shutdown-grace", type=float, default=30.0,
        help="on SIGTERM: s that requests in flight may take to finish (keep it below the "
        "pod's terminationGracePeriodSeconds)",
    )  # fmt: skip
    p.add_argument(
        "--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
        help="uvloop (libuv, less CPU per request) or the standard library's loop",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=1,
        help="router processes sharing --listen (SO_REUSEPORT) under one supervisor",
    )  # fmt: skip
    p.add_argument("--log-level", default="INFO")
    return p


def _source(args: argparse.Namespace, phase: str) -> Source:
    service, pods = getattr(args, f"{phase}_service"), getattr(args, f"{phase}_pods")
    if (service is None) == (pods is None):
        raise ValueError(f"--{phase}-service or --{phase}-pods: give exactly one")
    if service is not None:
        return Source(service=service)
    try:
        found = tuple(parse_static(pods))
    except ValueError as error:
        raise ValueError(f"--{phase}-pods: {error}") from None
    if phase == "decode" and not found:
        raise ValueError("--decode-pods: at least one pod")
    return Source(pods=found)


def config(args: argparse.Namespace) -> Config:
    """The router's settings from the flags; ValueError naming the flag at fault."""
    positive = {
        "--min-prefill-chars": args.min_prefill_chars >= 0,
        "--block-chars": args.block_chars > 0,
        "--prefix-blocks": args.prefix_blocks > 0,
        "--balance": args.balance >= 1.0,
        "--prefill-timeout": args.prefill_timeout_s > 0,
        "--decode-timeout": args.decode_timeout_s > 0,
        "--scrape-interval": args.scrape_interval > 0,
        "--max-body-mib": args.max_body_mib > 0,
        "--shutdown-grace": args.shutdown_grace >= 0,
        "--workers": args.workers >= 1,
    }
    for flag, ok in positive.items():
        if not ok:
            raise ValueError(f"{flag}: out of range")
    try:
        host, port = parse_address(args.listen)
    except ValueError as error:
        raise ValueError(f"--listen: {error}") from None
    try:
        status_host, status_port = parse_address(args.status_address)
    except ValueError as error:
        raise ValueError(f"--status-address: {error}") from None
    return Config(
        prefill=_source(args, "prefill"),
        decode=_source(args, "decode"),
        host=host,
        port=port,
        status_host=status_host,
        status_port=status_port,
        namespace=args.namespace,
        kubeconfig=args.kubeconfig,
        port_name=args.port_name,
        scrape_interval_s=args.scrape_interval,
        max_body_bytes=int(args.max_body_mib * 1024 * 1024),
        shutdown_grace_s=args.shutdown_grace,
        tuning=Tuning(
            prefill_policy=args.prefill_policy,
            **{field: getattr(args, field) for _, field, _, _ in TUNING_FLAGS},
        ),
    )


async def _run(settings: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop)


def run(settings: Config, log_level: str, event_loop: str) -> None:
    """One router process, on uvloop or asyncio's loop, until SIGTERM or SIGINT."""
    logs.configure(log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    loop_factory = uvloop.new_event_loop if event_loop == "uvloop" else None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_run(settings))


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        settings = config(args)
    except ValueError as error:
        log.error("bad command line", extra={"fields": {"error": str(error)}})
        sys.exit(2)
    if args.workers > 1:
        from pd_router.workers import supervise

        sys.exit(supervise(settings, args.workers, args.log_level, args.event_loop))
    run(settings, args.log_level, args.event_loop)


if __name__ == "__main__":
    main()
