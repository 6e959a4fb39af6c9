"""The front door's features priced side by side: variants of one replica's route in one front door.

    .venv/bin/python tools/bench/front_door_ab.py [--rounds 300] [--runs 3] VARIANT...

`tools/bench/stream_bench.py` runs one configuration per process, so two of its runs
differ by everything that drifted in between (on a shared 2-core machine, often more
than the feature being priced). Here every variant is a ModelService of its own in the
same processes: one engine simulator, one cluster gateway and one front door (Traefik
with the local fleet's command line, as in `stream_bench`), the front door's routes
rendered by `gateway_config.decide` per variant (a namespace per variant, so the
variants' routes, Middlewares and Services sit side by side) and merged into one file
configuration. Streams go one at a time, each round one to the engine directly and one
through each variant, the order rotating every round, so all meet the same load and the
same cache state; the figure is each variant's time to the first token less the
engine's, at p50 over the round's streams, per run, and the median of the runs.

VARIANT is `NAME` or `NAME:OPTION,OPTION...` (NAME: letters and digits, lower case),
OPTION `key=value`:
- `keys=1|0`: the InferenceGateway requires API keys (the key plugin checks every
  request), default 1;
- `retries=1|0`: the route's retry Middleware, default 1;
- `weights=1|0`: the service split 19:1 over two entries (two endpoints on the same
  cluster gateway), default 1;
- `body=N`: the retry's `maxRequestBodyBytes` (`--retry-max-body-bytes`), default -1;
- `hop=h2c|http1`: h2c, as gateway-config renders a replica's endpoint; `http1` is a
  what-if, not what gateway-config renders: the front door speaks HTTP/1.1 to the
  cluster gateway (the server URLs rewritten), whose route then reads each body whole
  before relaying it (a retry Middleware with `maxRequestBodyBytes: -1`), as it would
  have to so that golang/go#40747 cannot cut a stream on its HTTP/1.1 client side.

A benchmark, not a test: it never fails on its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway_config import retry
from gateway_config.backends import Backend

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.bench import stream_bench  # noqa: E402
from tools.bench.stream_bench import HOST, Relay, free_port, stream_rounds  # noqa: E402

WARM_ROUNDS = 20
BUFFERED = "/engine-buffered/"
"""The cluster gateway's route to the engine that reads each body whole first (`hop=http1`)."""
NAME = re.compile(r"[a-z][a-z0-9]{0,15}")


@dataclass(frozen=True)
class Variant:
    name: str
    keys: bool = True
    retries: bool = True
    weights: bool = True
    body: int = retry.UNBOUNDED_BODY
    http1: bool = False

    @staticmethod
    def parse(text: str) -> Variant:
        name, _, options = text.partition(":")
        if not NAME.fullmatch(name) or name == "bench":
            raise SystemExit(f"variant {text!r}: a name of lower-case letters and digits")
        found: dict[str, Any] = {}
        for option in filter(None, options.split(",")):
            key, _, value = option.partition("=")
            if key in ("keys", "retries", "weights") and value in ("0", "1"):
                found[key] = value == "1"
            elif key == "body" and re.fullmatch(r"-1|[1-9][0-9]*", value):
                found[key] = int(value)
            elif key == "hop" and value in ("h2c", "http1"):
                found["http1"] = value == "http1"
            else:
                raise SystemExit(f"variant {text!r}: bad option {option!r}")
        return Variant(name, **found)


def front_config(
    variant: Variant, cluster_url: str, hop_port: int, key_port: int, work: Path
) -> Any:
    """What gateway-config renders for the variant's ModelService `<name>/replica`."""
    ns = variant.name
    endpoints = [stream_bench.endpoint("replica", cluster_url, "/engine/", True, ns)]
    if variant.weights:
        endpoints.append(
            stream_bench.endpoint(stream_bench.CANARY, cluster_url, "/engine/", True, ns)
        )
    config = stream_bench.rendered(
        endpoints, "", hop_port, work, variant.retries, key_port if variant.keys else None,
        namespace=ns, retry_max_body_bytes=variant.body,
    )  # fmt: skip
    if variant.http1:
        text = (
            json.dumps(config).replace('"h2c://', '"http://').replace('"/engine/', f'"{BUFFERED}')
        )
        config = json.loads(text)
    return config


def cluster_config(engine_port: int) -> dict[str, Any]:
    """The cluster gateway's routes to the engine: `/engine/` as rendered, and `BUFFERED`
    reading each body whole first (for `hop=http1`)."""
    engine = Backend("engine", "http", HOST, engine_port, "IPv4", "/")
    config = stream_bench.routes({"engine": engine}, Path("/nonexistent"), prefix="/")
    http = config["http"]
    name = BUFFERED.strip("/")
    http["routers"][name] = {
        **http["routers"]["engine"],
        "rule": f"PathPrefix(`{BUFFERED}`)",
        "middlewares": [f"{name}-rewrite", f"{name}-read-whole"],
    }
    rewrite = {"regex": f"^{BUFFERED}(.*)", "replacement": "/$1"}
    http["middlewares"][f"{name}-rewrite"] = {"replacePathRegex": rewrite}
    # (POST is buffered only when it may be retried on a status)
    read_whole = {"attempts": 2, "status": ["502"], "retryNonIdempotentMethod": True,
                  "maxRequestBodyBytes": retry.UNBOUNDED_BODY}  # fmt: skip
    http["middlewares"][f"{name}-read-whole"] = {"retry": read_whole}
    return config


def merged(configs: list[Any]) -> dict[str, Any]:
    http: dict[str, dict[str, Any]] = {}
    for config in configs:
        for section, items in config["http"].items():
            http.setdefault(section, {}).update(items)
    return {"http": http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", metavar="VARIANT")
    parser.add_argument("--rounds", type=int, default=300, help="streams per variant per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    variants = [Variant.parse(v) for v in args.variants]
    if len({v.name for v in variants}) != len(variants):
        raise SystemExit("variant names must differ")
    work = Path(tempfile.mkdtemp(prefix="front-door-ab-"))
    relay = Relay(work, baseline=False)
    engine_port, cluster_port, key_port = free_port(), free_port(), free_port()
    try:
        relay.simulator("engine", engine_port)
        relay.traefik("cluster-gateway", cluster_port, cluster_config(engine_port))
        relay.spawn(
            "key-server", [sys.executable, stream_bench.__file__, "--serve-keys", str(key_port)]
        )
        cluster_url = f"http://cluster.bench.test:{cluster_port}"
        configs = [front_config(v, cluster_url, relay.hop, key_port, work) for v in variants]
        relay.traefik("front-door", relay.front_port, merged(configs), relay.hop)
        urls = {"engine": f"http://{HOST}:{engine_port}/v1/chat/completions"}
        for v in variants:
            urls[v.name] = f"http://{HOST}:{relay.front_port}/{v.name}/replica/v1/chat/completions"
        relay.wait_ready([], urls=list(urls.values()))
        asyncio.run(stream_rounds(urls, WARM_ROUNDS))
        added: dict[str, list[float]] = {v.name: [] for v in variants}
        for run in range(1, args.runs + 1):
            began = time.strftime("%H:%M:%S")
            tallies = asyncio.run(stream_rounds(urls, args.rounds))
            engine = statistics.median(tallies["engine"].first) * 1000
            print(f"run {run} (from {began} UTC): engine ttft p50 {engine:.3f} ms", flush=True)
            for v in variants:
                figures = tallies[v.name].figures()
                p50 = statistics.median(tallies[v.name].first) * 1000
                added[v.name].append(p50 - engine)
                print(f"  {v.name:12} ttft p50 {p50:7.3f} p99 {figures['first_p99_ms']:7.2f} "
                      f"added p50 {p50 - engine:+.3f} ms  failed {figures['failed']} "
                      f"cut {figures['cut']}", flush=True)  # fmt: skip
                for reason, count in figures["errors"].items():
                    print(f"    {count} x {reason}", flush=True)
        print(f"median over {args.runs} runs of the added ttft p50 (ms):")
        for v in variants:
            runs = ", ".join(f"{a:+.3f}" for a in added[v.name])
            print(f"  {v.name:12} {statistics.median(added[v.name]):+.3f}  ({runs})  {v}")
    finally:
        relay.stop()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
