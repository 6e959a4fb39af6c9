"""The front door's features priced side by side: variants of one replica's route in one front door.

    .venv/bin/python tools/bench/front_door_ab.py [--rounds 300] [--runs 3] [--concurrency 1]
        [--gap-ms 0] [--fleet [--with-file]] VARIANT...

`tools/bench/stream_bench.py` runs one configuration per process, so two of its runs
differ by everything that drifted in between (on a shared 2-core machine, often more
than the feature being priced). Here every variant is a ModelService of its own in the
same processes: one engine simulator, one cluster gateway and one front door (Traefik
with the local fleet's command line, as in `stream_bench`), the front door's routes
rendered by `gateway_config.decide` per variant (a namespace per variant, so the
variants' routes, Middlewares and Services sit side by side) and merged into one file
configuration. Streams go one at a time (`--concurrency N`: N at once), each round
one (N) to the engine directly and one (N) through each variant, in an order shuffled
every round (`stream_bench.stream_rounds`; `--gap-ms`: quiet before each), so all meet
the same load and the same cache state; the figure is each variant's time to the first
token less the engine's, at p50 over the round's streams, per run, and the median of
the runs. The p50 and p99 of each, and the added p50, are printed per run and as
medians of the runs.

Two front doors:
- by default, Traefik with the file provider: `tools.bench.rendered_routes`
  translates the rendered objects. Not quite what ships: the file provider cannot
  build the Gateway provider's RequestHeaderModifier and URLRewrite middlewares
  (which edit the request and call the next handler), so the hop token, the key
  headers' removal and a rewritten Host become `headers` middlewares, which also
  wrap the response writer (side by side with `--with-file`, within the runs'
  spread of the shipped front door: `tools/bench/README.md`);
- `--fleet` (needs root): the local fleet's control cluster alone (`up` without
  a fleet file, torn down after) and its Traefik, which reads the rendered
  objects, applied to the control cluster's API server, through its Gateway and
  CRD providers, as the front door a user runs does. The engine, the cluster
  gateway and the key server run on the control cluster's address, inside the
  fleet's network namespace, as the bench itself does. The objects lose their
  owner references (their ModelServices are not applied). `--fleet --with-file`
  also runs the file provider's front door beside it, each variant twice, the
  file provider's copy named `f<name>`: the two front doors side by side.

VARIANT is `NAME` or `NAME:OPTION,OPTION...` (NAME: letters and digits, lower case),
OPTION `key=value`:
- `keys=1|0`: the InferenceGateway requires API keys (the key plugin checks every
  request), default 1;
- `retries=1|0`: the route's retry Middleware, default 1;
- `weights=1|0`: the service split 19:1 over two entries (two endpoints on the same
  cluster gateway), default 1;
- `body=N`: the retry's `maxRequestBodyBytes` (`--retry-max-body-bytes`), default -1;
- `order=A-B-C`: a what-if order of the route's key check, header edits and retry
  (`keys`, `headers`, `retry`, each once), e.g. `retry-keys-headers`; default: as
  rendered (`keys-retry-headers`);
- `hop=h2c|http1`: h2c, as gateway-config renders a replica's endpoint; `http1` is a
  what-if, not what gateway-config renders: the front door speaks HTTP/1.1 to the
  cluster gateway (the server URLs rewritten), whose route then reads each body whole
  before relaying it (a retry Middleware with `maxRequestBodyBytes: -1`), as it would
  have to so that golang/go#40747 cannot cut a stream on its HTTP/1.1 client side
  (file provider only).

A benchmark, not a test: it never fails on its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway_config import retry
from gateway_config.backends import Backend
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.layout import CONTROL, PORTS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.bench import benchfleet, stream_bench  # noqa: E402
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
    order: tuple[str, ...] = ()

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
            elif key == "order" and sorted(value.split("-")) == sorted(STEPS):
                found["order"] = tuple(value.split("-"))
            else:
                raise SystemExit(f"variant {text!r}: bad option {option!r}")
        return Variant(name, **found)


STEPS = ("keys", "headers", "retry")


def _file_step(middleware: str) -> str | None:
    """Which step a file configuration's router middleware is (its name as translated)."""
    if "-mp-auth-" in middleware:
        return "keys"
    return "headers" if middleware.endswith("-headers") else "retry"


def _filter_step(item: dict[str, Any]) -> str | None:
    """Which step an HTTPRoute rule filter is."""
    if item["type"] == "RequestHeaderModifier":
        return "headers"
    if item["type"] != "ExtensionRef":
        return None
    return "keys" if item["extensionRef"]["name"].startswith("mp-auth-") else "retry"


def reordered(variant: Variant, chain: list[Any], step: Callable[[Any], str | None]) -> list[Any]:
    """`chain` in the variant's `order` (unchanged without one; other items stay last)."""
    if not variant.order:
        return chain
    rank: dict[str | None, int] = {name: i for i, name in enumerate(variant.order)}
    return sorted(chain, key=lambda item: rank.get(step(item), len(rank)))


def variant_endpoints(variant: Variant, cluster_url: str) -> list[dict[str, Any]]:
    """The variant's ModelEndpoints: the replica behind `cluster_url` and, with weights, the
    canary (the same cluster gateway)."""
    names = ["replica", stream_bench.CANARY] if variant.weights else ["replica"]
    return [stream_bench.endpoint(n, cluster_url, "/engine/", True, variant.name) for n in names]


def front_config(
    variant: Variant, cluster_url: str, hop_port: int, key_port: int, work: Path, address: str
) -> Any:
    """What gateway-config renders for the variant's ModelService `<name>/replica`, as a file
    configuration (the cluster gateway's name resolving to `address`)."""
    objects = variant_objects(variant, cluster_url, hop_port, key_port, HOST)
    endpoints = variant_endpoints(variant, cluster_url)
    config = stream_bench.file_configuration(objects, endpoints, work, address)
    for router in config["http"]["routers"].values():
        router["middlewares"] = reordered(variant, router.get("middlewares", []), _file_step)
    if variant.http1:
        text = (
            json.dumps(config).replace('"h2c://', '"http://').replace('"/engine/', f'"{BUFFERED}')
        )
        config = json.loads(text)
    return config


def variant_objects(
    variant: Variant, cluster_url: str, hop_port: int, key_port: int, gateway_address: str
) -> list[dict[str, Any]]:
    """What gateway-config renders for the variant's ModelService `<name>/replica`."""
    return stream_bench.rendered_objects(
        variant_endpoints(variant, cluster_url), "", hop_port, variant.retries,
        key_port if variant.keys else None, namespace=variant.name,
        retry_max_body_bytes=variant.body, gateway_address=gateway_address,
    )  # fmt: skip


def fleet_objects(variant: Variant, cluster_url: str, key_port: int, address: str) -> list[Any]:
    """`variant_objects` for the fleet's control cluster (its Gateway at `address`), without
    owner references."""
    objects = variant_objects(variant, cluster_url, PORTS.gateway_hop, key_port, address)
    for obj in objects:
        obj["metadata"].pop("ownerReferences", None)
        if obj["kind"] == "HTTPRoute":
            rule = obj["spec"]["rules"][0]
            rule["filters"] = reordered(variant, rule.get("filters", []), _filter_step)
    return objects


def apply_to_control(fleet: Fleet, objects: list[Any]) -> None:
    """Each object once (the Gateway is every variant's), after the namespaces they live in."""
    unique = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
    names = sorted({o["metadata"]["namespace"] for o in objects})
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]
    for batch in (namespaces, list(unique.values())):
        fleet.cluster(CONTROL).kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=front-door-ab",
            "-f", "-", stdin="\n".join(json.dumps(o) for o in batch),
        )  # fmt: skip


def cluster_config(engine_port: int, host: str = HOST) -> dict[str, Any]:
    """The cluster gateway's routes to the engine on `host`: `/engine/` as rendered, and
    `BUFFERED` reading each body whole first (for `hop=http1`)."""
    engine = Backend("engine", "http", host, engine_port, "IPv4", "/")
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
    parser.add_argument(
        "--concurrency", type=int, default=1, help="streams at once per URL in each round"
    )
    parser.add_argument(
        "--gap-ms", type=float, default=0.0, help="quiet before each stream (or batch)"
    )
    parser.add_argument(
        "--fleet", action="store_true", help="the local fleet's front door (Gateway provider)"
    )
    parser.add_argument(
        "--with-file", action="store_true", help="with --fleet: the file provider's too"
    )
    args = parser.parse_args()
    variants = [Variant.parse(v) for v in args.variants]
    if len({v.name for v in variants}) != len(variants):
        raise SystemExit("variant names must differ")
    if args.fleet and any(v.http1 for v in variants):
        raise SystemExit("hop=http1 is a what-if of the file provider's front door, not --fleet")
    if args.with_file and not args.fleet:
        raise SystemExit("--with-file runs the file provider's front door beside --fleet's")
    work = Path(tempfile.mkdtemp(prefix="front-door-ab-"))
    # (`timeout` stops with SIGTERM: the processes and the fleet are still torn down)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work)
        fleet = stack.enter_context(benchfleet.fleet_in(work, None)) if args.fleet else None
        run_variants(variants, args, work, fleet)


def run_variants(
    variants: list[Variant], args: argparse.Namespace, work: Path, fleet: Fleet | None
) -> None:
    address = HOST if fleet is None else fleet.cluster(CONTROL).plan.address
    relay = Relay(work, baseline=False, host=address)
    engine_port, cluster_port, key_port = free_port(), free_port(), free_port()
    try:
        relay.simulator("engine", engine_port)
        relay.traefik("cluster-gateway", cluster_port, cluster_config(engine_port, address))
        relay.key_server(key_port)
        urls = {"engine": f"http://{address}:{engine_port}/v1/chat/completions"}
        on_file = variants
        if fleet is not None:
            cluster_url = f"http://{address}:{cluster_port}"
            objects = [fleet_objects(v, cluster_url, key_port, address) for v in variants]
            apply_to_control(fleet, [o for found in objects for o in found])
            for v in variants:
                urls[v.name] = f"{fleet.gateway_address()}/{v.name}/replica/v1/chat/completions"
            on_file = [dataclasses.replace(v, name=f"f{v.name}") for v in variants]
            on_file = on_file if args.with_file else []
            variants = variants + on_file
        if on_file:
            cluster_url = f"http://cluster.bench.test:{cluster_port}"
            configs = [
                front_config(v, cluster_url, relay.hop, key_port, work, address) for v in on_file
            ]
            relay.traefik("front-door", relay.front_port, merged(configs), relay.hop)
            front = f"http://{address}:{relay.front_port}"
            for v in on_file:
                urls[v.name] = f"{front}/{v.name}/replica/v1/chat/completions"
        relay.wait_ready([], timeout_s=120, urls=list(urls.values()))
        described = {v.name: str(v) for v in variants}
        time_side_by_side(urls, described, args.rounds, args.runs, args.concurrency, args.gap_ms)
    finally:
        relay.stop()


def time_side_by_side(
    urls: dict[str, str], described: dict[str, str], rounds: int, runs: int,
    concurrency: int = 1, gap_ms: float = 0.0,
) -> None:  # fmt: skip
    """Streams to `urls` (`engine`, the direct figure, and one per name of `described`) in
    shuffled rounds (`stream_rounds`), after `WARM_ROUNDS`: each one's time to the first
    token at p50 and p99, and the added p50 (less the engine's in the same run), printed per
    run and as medians of the `runs` (each name followed by its description)."""
    gap_s = gap_ms / 1000
    asyncio.run(stream_rounds(urls, WARM_ROUNDS, concurrency, gap_s))
    added: dict[str, list[float]] = {name: [] for name in described}
    p50s: dict[str, list[float]] = {name: [] for name in urls}
    p99s: dict[str, list[float]] = {name: [] for name in urls}
    for run in range(1, runs + 1):
        began = time.strftime("%H:%M:%S")
        tallies = asyncio.run(stream_rounds(urls, rounds, concurrency, gap_s, seed=run))
        for name, tally in tallies.items():
            p50s[name].append(statistics.median(tally.first) * 1000)
            p99s[name].append(tally.figures()["first_p99_ms"])
        engine = p50s["engine"][-1]
        print(f"run {run} (from {began} UTC): engine ttft p50 {engine:.3f} "
              f"p99 {p99s['engine'][-1]:.2f} ms", flush=True)  # fmt: skip
        for name in described:
            figures = tallies[name].figures()
            p50 = p50s[name][-1]
            added[name].append(p50 - engine)
            print(f"  {name:12} ttft p50 {p50:7.3f} p99 {figures['first_p99_ms']:7.2f} "
                  f"added p50 {p50 - engine:+.3f} ms  failed {figures['failed']} "
                  f"cut {figures['cut']}", flush=True)  # fmt: skip
            for reason, count in figures["errors"].items():
                print(f"    {count} x {reason}", flush=True)
    print(f"median over {runs} runs (ms), {concurrency} stream(s) at a time:")
    print(f"  {'engine':12} ttft p50 {statistics.median(p50s['engine']):7.3f} "
          f"p99 {statistics.median(p99s['engine']):7.2f}")  # fmt: skip
    for name, description in described.items():
        each = ", ".join(f"{a:+.3f}" for a in added[name])
        middle = statistics.median(added[name])
        print(f"  {name:12} ttft p50 {statistics.median(p50s[name]):7.3f} "
              f"p99 {statistics.median(p99s[name]):7.2f}  "
              f"added p50 {middle:+.3f} ({each})  {description}")  # fmt: skip


if __name__ == "__main__":
    main()
