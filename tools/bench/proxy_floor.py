"""The floor of two proxy hops on this machine: nginx, bare Go, and the two Traefiks.

    .venv/bin/python tools/bench/proxy_floor.py [--rounds 150] [--runs 3]

Issue 19 asks the two gateways (front door and cluster gateway) to add under 1 ms
to the time to the first token. This prices the data planes themselves, each as
two hops in front of one engine simulator, in the same shuffled rounds
(`front_door_ab.time_side_by_side`), one stream at a time:
- `nginx2`: two nginx hops, HTTP/1.1 with kept-alive upstream connections and
  unbuffered answers (a C event loop; `apt-get install nginx`; skipped, with a
  line saying so, when `nginx` is not on PATH: the product does not need it);
- `go2`: two of `tools/bench/goproxy` (Go's `httputil.ReverseProxy` and nothing
  else, built with `tests.gotools`), HTTP/1.1 in and out (exposed to
  golang/go#40747: a stream may be cut now and then);
- `go2h2c`: the same with h2c between the two, as the front door reaches a
  cluster gateway;
- `bare`: the two Traefiks with the local fleet's command line and the route
  gateway-config renders without keys, retries or weights (`front_door_ab`'s
  file-provider front door);
- `now`: the same with keys, retries and weights on, as rendered.
The figure is each one's time to the first token at p50 less the engine's in the
same run, per run and as the median of the runs. A benchmark, not a test: it never
fails on its figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.gotools import GoTool  # noqa: E402
from tools.bench.front_door_ab import (  # noqa: E402
    Variant,
    cluster_config,
    front_config,
    merged,
    time_side_by_side,
)
from tools.bench.stream_bench import HOST, Relay, free_port  # noqa: E402

GOPROXY = GoTool("goproxy", ROOT / "tools" / "bench" / "goproxy")
PATH = "/v1/chat/completions"
TRAEFIK_VARIANTS = (Variant("bare", keys=False, retries=False, weights=False), Variant("now"))


def nginx_config(work: Path, first: int, second: int, engine: int) -> str:
    """Two servers: `first` relays to `second`, which relays to the engine."""

    def relay_to(upstream: str) -> str:
        return (
            f"location / {{ proxy_pass http://{upstream}; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; proxy_buffering off; }'
        )

    return "\n".join([
        f"daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx.log;",
        "events { worker_connections 1024; }",
        "http { access_log off;",
        f"  upstream engine {{ server {HOST}:{engine}; keepalive 16; }}",
        f"  upstream second {{ server {HOST}:{second}; keepalive 16; }}",
        f"  server {{ listen {HOST}:{first}; {relay_to('second')} }}",
        f"  server {{ listen {HOST}:{second}; {relay_to('engine')} }}",
        "}",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150, help="streams per URL per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="proxy-floor-"))
    relay = Relay(work, baseline=False)
    engine, key_port = free_port(), free_port()
    urls = {"engine": f"http://{HOST}:{engine}{PATH}"}
    described: dict[str, str] = {}
    try:
        relay.simulator("engine", engine)
        relay.key_server(key_port)
        nginx = shutil.which("nginx")
        if nginx is None:
            print("nginx not on PATH (apt-get install nginx): its row skipped", flush=True)
        else:
            first, second = free_port(), free_port()
            config = work / "nginx.conf"
            config.write_text(nginx_config(work, first, second, engine))
            relay.spawn("nginx", [nginx, "-c", str(config), "-p", str(work)])
            urls["nginx2"] = f"http://{HOST}:{first}{PATH}"
            described["nginx2"] = "two nginx hops, HTTP/1.1"
        goproxy = str(GOPROXY.build())
        for name, between, text in (("go2", "http", "HTTP/1.1"), ("go2h2c", "h2c", "h2c between")):
            first, second = free_port(), free_port()
            relay.spawn(f"{name}-second", [goproxy, f"{HOST}:{second}",
                                           f"http://{HOST}:{engine}", between])  # fmt: skip
            relay.spawn(f"{name}-first", [goproxy, f"{HOST}:{first}",
                                          f"{between}://{HOST}:{second}"])  # fmt: skip
            urls[name] = f"http://{HOST}:{first}{PATH}"
            described[name] = f"two bare Go ReverseProxy hops, {text}"
        cluster_port = free_port()
        relay.traefik("cluster-gateway", cluster_port, cluster_config(engine))
        cluster_url = f"http://cluster.bench.test:{cluster_port}"
        configs = [
            front_config(v, cluster_url, relay.hop, key_port, work, HOST) for v in TRAEFIK_VARIANTS
        ]
        relay.traefik("front-door", relay.front_port, merged(configs), relay.hop)
        for v in TRAEFIK_VARIANTS:
            urls[v.name] = f"http://{HOST}:{relay.front_port}/{v.name}/replica{PATH}"
            described[v.name] = f"the two Traefiks, {v}"
        relay.wait_ready([], timeout_s=120, urls=list(urls.values()))
        time_side_by_side(urls, described, args.rounds, args.runs)
    finally:
        relay.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
