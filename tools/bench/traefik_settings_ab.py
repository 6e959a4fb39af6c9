"""Traefik process settings side by side: each setting its own two gateways, one engine.

    .venv/bin/python tools/bench/traefik_settings_ab.py [--rounds 200] [--runs 3] SETTING...

`front_door_ab.py` prices what a route renders, all variants in one front door; a
setting of the Traefik process itself (a flag, an environment variable of the Go
runtime) needs processes of its own. Here each SETTING gets a cluster gateway and a
front door (Traefik with the local fleet's command line, `gateway.traefik_command`,
routes from a file as in `front_door_ab.py` without `--fleet`), the front door's route
what gateway-config renders with retries, weights and keys on (`front_door_ab`'s
variant `now`), all before one engine simulator and one key server. Streams go one at
a time in rounds shuffled every round (`stream_bench.stream_rounds`): to the engine
directly, through each setting's two gateways (`NAME`), and to each setting's
cluster gateway alone (`NAME-cluster`, one Traefik, HTTP/1.1 in and out; nothing
reads the body whole before it, so golang/go#40747 may cut one of these streams now
and then, as it would any HTTP/1.1 relay to HTTP/1.1 in Go: see
`gateway_config.backends`). The figure is each one's time to the first token at p50
less the engine's in the same run, per run and as the median of the runs.

SETTING is `NAME` (Traefik as the local fleet runs it) or `NAME:ITEM;ITEM...` (NAME:
lower-case letters and digits), ITEM a flag added to both Traefiks' command line
(`--experimental.fastProxy=true`) or an environment variable of both
(`GOMAXPROCS=1`). Name two settings alike (`a b`) to see the spread between two
identical pairs. A benchmark, not a test: it never fails on its figures.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.bench.front_door_ab import (  # noqa: E402
    Variant,
    cluster_config,
    front_config,
    time_side_by_side,
)
from tools.bench.stream_bench import HOST, Relay, Tried, free_port  # noqa: E402

NAME = re.compile(r"[a-z][a-z0-9]{0,15}")
ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
AS_RENDERED = Variant("now")
"""The front door's route: retries, weights and keys, as gateway-config renders them."""


def parse(text: str) -> tuple[str, Tried]:
    """One SETTING: its name and what it adds to both Traefiks."""
    name, _, items = text.partition(":")
    if not NAME.fullmatch(name) or name == "engine":
        raise SystemExit(f"setting {text!r}: a name of lower-case letters and digits")
    flags: list[str] = []
    env: list[tuple[str, str]] = []
    for item in filter(None, items.split(";")):
        if item.startswith("--"):
            flags.append(item)
        elif ENV.fullmatch(item):
            variable, _, value = item.partition("=")
            env.append((variable, value))
        else:
            raise SystemExit(f"setting {text!r}: {item!r} is neither --flag nor NAME=VALUE")
    return name, Tried(tuple(flags), tuple(env))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", metavar="SETTING")
    parser.add_argument("--rounds", type=int, default=200, help="streams per URL per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = dict(parse(text) for text in args.settings)
    if len(settings) != len(args.settings):
        raise SystemExit("setting names must differ")
    work = Path(tempfile.mkdtemp(prefix="traefik-settings-ab-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shared = Relay(work, baseline=False)
    relays = [shared]
    engine_port, key_port = free_port(), free_port()
    urls = {"engine": f"http://{HOST}:{engine_port}/v1/chat/completions"}
    described: dict[str, str] = {}
    try:
        shared.simulator("engine", engine_port)
        shared.key_server(key_port)
        for name, tried in settings.items():
            (work / name).mkdir()
            relay = Relay(work / name, baseline=False, tried=tried)
            relays.append(relay)
            cluster_port = free_port()
            relay.traefik("cluster-gateway", cluster_port, cluster_config(engine_port))
            cluster_url = f"http://cluster.bench.test:{cluster_port}"
            config = front_config(AS_RENDERED, cluster_url, relay.hop, key_port, work / name, HOST)
            relay.traefik("front-door", relay.front_port, config, relay.hop)
            added = " ".join([*tried.args, *(f"{k}={v}" for k, v in tried.env)]) or "as run"
            urls[name] = f"http://{HOST}:{relay.front_port}/now/replica/v1/chat/completions"
            described[name] = f"both gateways, {added}"
            urls[f"{name}-cluster"] = f"http://{HOST}:{cluster_port}/engine/v1/chat/completions"
            described[f"{name}-cluster"] = f"the cluster gateway alone, {added}"
        shared.wait_ready([], timeout_s=120, urls=list(urls.values()))
        time_side_by_side(urls, described, args.rounds, args.runs)
    finally:
        for relay in relays:
            relay.stop()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
