"""Streamed chats relayed by the front door to each backend kind: sent, failed, cut.

    .venv/bin/python tools/bench/stream_bench.py [--requests 2000] [--concurrency 50]
        [--kinds engine replica plain https failover] [--baseline] [--direct] [--api-keys]
        [--weights] [--no-retries] [--traefik-arg FLAG]... [--traefik-env NAME=VALUE]...

No Kubernetes: on loopback, three engine simulators, a cluster gateway and a
front door, both Traefik with the local fleet's command line
(`gateway.traefik_command`, the front door with its `hop` entrypoint) but
routes from a file instead of the Gateway provider. The front door's routes
are what gateway-config renders: `gateway_config.decide` over one ModelService
`bench/<kind>` per kind with one ModelEndpoint each (the Gateway's address
127.0.0.1, the CA bundle ConfigMap the bench's CA), turned into file-provider
configuration by `tools.bench.rendered_routes`:
- `engine`: no gateway, the replica's engine simulator itself (the figure the
  others' added latency is measured against);
- `replica`: an endpoint published by endpoint-manager (the cluster gateway's
  address): h2c to the cluster gateway, which relays HTTP/1.1 to the engine;
- `plain`: an external provider by plain HTTP;
- `https`: an external provider by HTTPS, verified against a CA made here for
  its host name, HTTP/2 left enabled as in the Gateway provider's
  BackendTLSPolicy transports (the simulator speaks HTTP/1.1 only);
- `failover`: the replica at priority 0 with the `https` provider at priority
  1 (`gateway_config.failover`): web -> failover link -> h2c -> hop (the
  tier's route) -> h2c to the cluster gateway; the provider answers only what
  the replica fails or refuses (nothing, here), so its figure next to
  `replica`'s is the price of the fallback chain.
So `plain` and `https` go web -> h2c -> hop -> provider, as gateway-config
routes them, and every service route goes through its retry middleware. Each
route strips the service prefix (URLRewrite `ReplacePrefixMatch`) and, for a
host name, sends it as Host. Names resolve to
127.0.0.1 (the bench writes the server URLs itself; Traefik never resolves
them).

Each request is an OpenAI streamed chat sent as the SDK sends it (HTTP/1.1,
JSON body with a Content-Length). A request is `failed` when no 200 stream
began, `cut` when a 200 stream ended without `data: [DONE]` (an error or a
premature end). p50/p99 are over the complete streams: time to the first
`data:` line and to the end. `--baseline` drops `gateway.RELAY_FLAGS`;
`--direct` routes every backend straight from `web` (the front door before the
hop: HTTP/1.1 providers relayed HTTP/1.1 to HTTP/1.1, exposed to
golang/go#40747, see `gateway_config.backends`). `--api-keys` renders the
routes with the InferenceGateway's `spec.apiKeys.required` (`gateway_config.keys`)
over two key Secrets (`BENCH_KEY` for every service, `OTHER_KEY` for another
one): every service route checks the key first in Traefik's key plugin
(`gateway_config.plugin`, installed in the front door's working directory),
which reports its counts to gateway-config's key server (`gateway_config.keyserver`,
a process of its own here); every request carries `BENCH_KEY` (without
`--api-keys` the header is sent too, and ignored). `--weights` gives the
`replica` service a second entry at weight 1 against its own 19, over a second
endpoint to the same cluster gateway (a weighted split, `gateway_config.weights`).
`--no-retries` renders the routes without their retry Middleware.
`--traefik-arg` and `--traefik-env` add a flag or an environment variable to
both Traefiks (a setting to try). `--interleave`: one stream at a time, the kinds
taking turns, so every kind
meets the same load on a shared machine. After the table: each gateway
process's CPU time (user + system, from /proc) over the run, less its rate at
rest (sampled for `IDLE_S` before) times the run's length, per request sent to
a routed kind (the whole stream's, not only its first token's). A benchmark,
not a test: it never fails on its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from gateway_config import keys, retry
from gateway_config.backends import H2C, REPLICA_PUBLISHER, Backend, backend
from gateway_config.decide import Settings, Snapshot, decide
from gateway_config.keyserver import KeyServer
from modelplane_localfleet import gateway
from modelplane_localfleet.pki import CertificateAuthority

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.bench import rendered_routes  # noqa: E402

HOST = "127.0.0.1"
KINDS = ("engine", "replica", "plain", "https", "failover")
ROUTED = KINDS[1:]
"""The kinds behind the front door (`engine` is called directly)."""
PROVIDER = "provider.bench.modelplane.test"
BODY = {"model": "qwen", "messages": [{"role": "user", "content": "Tell me more"}],
        "max_tokens": 16, "stream": True}  # fmt: skip
DONE = "data: [DONE]"
BENCH_KEY = "sk-bench-0123456789abcdef"
OTHER_KEY = "sk-other-0123456789abcdef"
"""A key of the ModelService `bench/other` only: any bench service answers it 403."""
CANARY = "replica-canary"
"""`--weights`: the replica service's second endpoint (weight 1 against 19)."""
FALLBACK = "fallback"
"""The https provider as the `failover` service's priority-1 entry."""
CA_CONFIGMAP = "bench-ca"
NOW = "2026-01-01T00:00:00Z"
TICKS = os.sysconf("SC_CLK_TCK")
IDLE_S = 5.0
"""How long each gateway's CPU time at rest is sampled before the run (subtracted)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def endpoint(
    name: str, url: str, rewrite: str = "/", replica: bool = False, namespace: str = "bench"
) -> dict[str, Any]:
    """A ModelEndpoint as endpoint-manager (replica: the path the cluster gateway routes
    to the engine) or a platform team (provider) writes it."""
    labels = {"kind": name}
    if replica:
        labels["app.kubernetes.io/managed-by"] = REPLICA_PUBLISHER
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels}
    return {"kind": "ModelEndpoint", "metadata": meta, "spec": {"url": url, "rewritePath": rewrite}}


INFERENCE_GATEWAY: dict[str, Any] = {"kind": "InferenceGateway",
                                     "metadata": {"name": "default", "uid": "uid-ig"}}  # fmt: skip
"""The bench's InferenceGateway (its spec set by `rendered`): as on a cluster, there is one,
so the routes carry the hop token whether keys are required or not."""


def counts_token() -> str:
    """The token the key plugin rendered by `rendered` shows the key server."""
    return keys.counts_token([INFERENCE_GATEWAY])


def file_configuration(
    objects: list[dict[str, Any]], endpoints: list[dict[str, Any]], work: Path, address: str = HOST
) -> dict[str, Any]:
    """The front door's file configuration: `objects` (`rendered_objects` of `endpoints`) as
    Traefik's Gateway provider would load them (`tools.bench.rendered_routes`, the host of
    every endpoint's URL resolving to `address`)."""
    url_hosts = {str(e["spec"]["url"]).split("//")[1].rsplit(":", 1)[0] for e in endpoints}
    resolve = dict.fromkeys(url_hosts, address)
    entrypoints = {"http": gateway.WEB_ENTRYPOINT, "hop": gateway.HOP_ENTRYPOINT}
    return rendered_routes.file_config(objects, entrypoints, resolve, work)


def rendered_objects(
    endpoints: list[dict[str, Any]],
    ca_pem: str,
    hop_port: int,
    retries: bool = True,
    key_port: int | None = None,
    namespace: str = "bench",
    retry_max_body_bytes: int = retry.UNBOUNDED_BODY,
    gateway_address: str = HOST,
) -> list[dict[str, Any]]:
    """What gateway-config renders for one ModelService `<namespace>/<kind>` per endpoint
    (named by kind, in `namespace`): its namespaced objects (the Gateway among them, at
    `gateway_address`), the key plugin reporting to `key_port` on 127.0.0.1."""

    def entries(name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = [{"selector": {"matchLabels": {"kind": name}}}]
        if name == "failover":
            found.append({"selector": {"matchLabels": {"kind": FALLBACK}}, "priority": 1})
        if name == "replica" and any(e["metadata"]["name"] == CANARY for e in endpoints):
            found[0]["weight"] = 19
            found.append({"selector": {"matchLabels": {"kind": CANARY}}, "weight": 1})
        return found

    services = [
        {"kind": "ModelService",
         "metadata": {"name": e["metadata"]["name"], "namespace": namespace,
                      "uid": f"uid-ms-{e['metadata']['name']}"},
         "spec": {"endpoints": entries(e["metadata"]["name"])}}
        for e in endpoints if e["metadata"]["name"] not in (FALLBACK, CANARY)
    ]  # fmt: skip
    gateway_status = {"status": {"addresses": [{"type": "IPAddress", "value": gateway_address}]}}
    spec: dict[str, Any] = {"backend": "Traefik"}
    if key_port is not None:
        spec["apiKeys"] = {"required": True}
    snapshot = Snapshot(
        inference_gateways=[{**INFERENCE_GATEWAY, "spec": spec}],
        model_services=services,
        model_endpoints=endpoints,
        gateway={"kind": "Gateway", "metadata": {"name": "modelplane-gateway"}, **gateway_status},
        backend_ca={"data": {"ca.crt": ca_pem}},
        api_keys=[key_secret("bench", BENCH_KEY, keys.ANY_SERVICE),
                  key_secret("other", OTHER_KEY, "bench/other")],
    )  # fmt: skip
    settings = Settings(
        backend_ca=CA_CONFIGMAP, hop_port=hop_port, retries=retries,
        auth_url=f"http://{HOST}:{key_port}", retry_max_body_bytes=retry_max_body_bytes,
    )  # fmt: skip
    # (the GatewayClass is the Traefik install's)
    return [o for o in decide(snapshot, settings, NOW).apply if "namespace" in o["metadata"]]


def key_secret(name: str, key: str, services: str) -> dict[str, Any]:
    """A key Secret as a platform team writes it (`gateway_config.keys`)."""
    data = {keys.KEY_FIELD: key, keys.SERVICES_FIELD: services}
    return {
        "metadata": {
            "name": name,
            "namespace": keys.DEFAULT_NAMESPACE,
            "labels": {keys.LABEL: "true"},
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def server_url(found: Backend) -> str:
    """The URL Traefik dials for a backend: h2c for `kubernetes.io/h2c`, else its scheme."""
    scheme = "h2c" if found.app_protocol == H2C else found.scheme
    host = HOST if found.address_type == "FQDN" else found.host  # (names resolve to loopback)
    return f"{scheme}://{host}:{found.port}"


def _route(http: dict[str, Any], name: str, prefix: str, entrypoint: str, target: Backend) -> None:
    """Router `name` on `entrypoint` for `prefix`, to a backend (its path rewritten to the
    backend's `rewrite_path`, its host name sent as Host)."""
    middlewares = [f"{name}-rewrite"]
    url, path = server_url(target), target.rewrite_path
    transport = target.name if target.tls_hostname is not None else None
    if target.address_type == "FQDN":
        middlewares.append(f"{name}-host")
        headers = {"customRequestHeaders": {"Host": target.host}}
        http["middlewares"][f"{name}-host"] = {"headers": headers}
    rewrite = {"regex": f"^{prefix}(.*)", "replacement": path + "$1"}
    http["middlewares"][f"{name}-rewrite"] = {"replacePathRegex": rewrite}
    http["routers"][name] = {
        "rule": f"PathPrefix(`{prefix}`)",
        "service": name,
        "middlewares": middlewares,
        "entryPoints": [entrypoint],
    }
    balancer: dict[str, Any] = {"servers": [{"url": url}]}
    if transport is not None:
        balancer["serversTransport"] = transport
    http["services"][name] = {"loadBalancer": balancer}


def routes(backends: dict[str, Backend], ca_file: Path, prefix: str = "/bench/") -> dict[str, Any]:
    """Traefik dynamic configuration: `<prefix><kind>/...` straight to each backend from
    `web` (the cluster gateway's route to its engine, and `--direct`)."""
    http: dict[str, Any] = {"routers": {}, "middlewares": {}, "services": {}}
    transports: dict[str, Any] = {}
    for kind, found in backends.items():
        if found.tls_hostname is not None:
            transports[found.name] = {"serverName": found.tls_hostname, "rootCAs": [str(ca_file)]}
        _route(http, kind, f"{prefix}{kind}/", gateway.WEB_ENTRYPOINT, found)
    if transports:
        http["serversTransports"] = transports
    return {"http": http}


@dataclass(frozen=True)
class Tried:
    """Settings to try on both Traefiks: flags appended to their command line, environment
    variables (`--traefik-arg`, `--traefik-env`)."""

    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


NOTHING_TRIED = Tried()


class Relay:
    """The simulators and both Traefiks, each a process logging into `work`."""

    def __init__(
        self, work: Path, baseline: bool, direct: bool = False, retries: bool = True,
        api_keys: bool = False, weights: bool = False, tried: Tried = NOTHING_TRIED,
        host: str = HOST,
    ) -> None:  # fmt: skip
        self.work = work
        self.host = host
        """The address the simulators and Traefiks listen on."""
        self.tried = tried
        self.weights = weights
        self.key_port = free_port() if api_keys else None
        self.retries = retries
        self.baseline = baseline
        self.direct = direct
        self.hop = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.by_name: dict[str, subprocess.Popen[bytes]] = {}
        self.front_port = free_port()
        self.engine_port = 0
        self.pings: list[str] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        if name == "front-door":  # where Traefik finds the key plugin
            argv = gateway.in_plugin_directory(argv, self.work / name)
        log = (self.work / f"{name}.log").open("ab")
        environment = {**os.environ, **env} if env else None
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=environment)
        self.processes.append(process)
        self.by_name[name] = process

    def key_server(self, port: int) -> None:
        """gateway-config's key server (the key plugin's counts) on `port`, a process of its own."""
        self.spawn("key-server", [sys.executable, __file__, "--serve-keys", str(port)])

    def simulator(self, name: str, port: int, *extra: str) -> None:
        self.spawn(name, [
            sys.executable, "-m", "modelplane_enginesim", f"--host={self.host}", f"--port={port}",
            "--model=tiny", "--served-model-name=qwen", f"--pod-name={name}", *extra,
        ])  # fmt: skip

    def traefik(
        self, name: str, web_port: int, config: dict[str, Any], hop: int | None = None
    ) -> None:
        traefik = Path(sys.executable).parent / "traefik"
        admin = free_port()
        argv = gateway.traefik_command(
            traefik, address=self.host, web_port=web_port, admin_port=admin, hop_port=hop,
            https_port=free_port(),  # not 443: two benches or tests at once would collide
        )  # fmt: skip
        argv = [a for a in argv if not a.startswith("--providers.kubernetes")]
        if self.baseline:
            argv = [a for a in argv if a not in gateway.RELAY_FLAGS]
        dynamic = self.work / f"{name}.yaml"
        dynamic.write_text(json.dumps(config))  # YAML is a superset of JSON
        argv = [*argv, *self.tried.args, f"--providers.file.filename={dynamic}"]
        self.spawn(name, argv, dict(self.tried.env))
        self.pings.append(gateway.ping_url(self.host, admin))

    def start(self, kinds: list[str]) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca = CertificateAuthority.create("stream-bench-ca", now)
        pair = ca.issue(PROVIDER, now, dns_names=[PROVIDER], server=True)
        ca_file, cert, key = (self.work / n for n in ("ca.crt", "tls.crt", "tls.key"))
        ca_file.write_bytes(ca.pair().cert_pem)
        cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        ports = {"engine": free_port(), "cluster": free_port(), "plain": free_port()}
        ports["https"] = free_port()
        endpoints = {
            "replica": endpoint(
                "replica", f"http://cluster.bench.test:{ports['cluster']}", "/engine/", True
            ),
            "plain": endpoint("plain", f"http://plain.bench.test:{ports['plain']}"),
            "https": endpoint("https", f"https://{PROVIDER}:{ports['https']}"),
            "failover": endpoint(
                "failover", f"http://cluster.bench.test:{ports['cluster']}", "/engine/", True
            ),
        }
        self.engine_port = ports["engine"]
        routed = [kind for kind in kinds if kind in ROUTED]
        backends: dict[str, Backend] = {}
        for kind in routed:
            found = backend(endpoints[kind])
            assert isinstance(found, Backend), found
            backends[kind] = found
        if {"replica", "engine", "failover"} & set(kinds):
            self.simulator("engine", ports["engine"])
        if {"replica", "failover"} & set(kinds):
            engine = Backend("engine", "http", HOST, ports["engine"], "IPv4", "/")
            cluster = routes({"engine": engine}, ca_file, prefix="/")
            self.traefik("cluster-gateway", ports["cluster"], cluster)
        if "plain" in kinds:
            self.simulator("plain", ports["plain"])
        if {"https", "failover"} & set(kinds):
            self.simulator("https", ports["https"], f"--tls-cert={cert}", f"--tls-key={key}")
        if self.direct:
            front = routes(backends, ca_file)
        else:
            chosen = [endpoints[kind] for kind in routed]
            if "failover" in routed:
                chosen.append(endpoint(FALLBACK, f"https://{PROVIDER}:{ports['https']}"))
            if self.weights and "replica" in routed:
                url = f"http://cluster.bench.test:{ports['cluster']}"
                chosen.append(endpoint(CANARY, url, "/engine/", True))
            objects = rendered_objects(
                chosen, ca_file.read_text(), self.hop, self.retries, self.key_port
            )
            front = file_configuration(objects, chosen, self.work)
        if self.key_port is not None:
            self.key_server(self.key_port)
        self.traefik("front-door", self.front_port, front, self.hop)
        self.wait_ready(kinds)

    def cpu_seconds(self) -> dict[str, float]:
        """Each gateway process's CPU time so far (user + system, from /proc)."""
        found = {}
        for name in ("front-door", "cluster-gateway"):
            process = self.by_name.get(name)
            if process is None:
                continue
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[name] = (int(fields[11]) + int(fields[12])) / TICKS
        return found

    def url(self, kind: str) -> str:
        if kind == "engine":
            return f"http://{self.host}:{self.engine_port}/v1/chat/completions"
        return f"http://{self.host}:{self.front_port}/bench/{kind}/v1/chat/completions"

    def wait_ready(
        self, kinds: list[str], timeout_s: float = 60.0, urls: list[str] | None = None
    ) -> None:
        """Until both Traefiks answer their ping and a chat is answered 200 through each
        kind's URL (and each of `urls`)."""
        deadline = time.monotonic() + timeout_s
        pending = [*self.pings, *(self.url(k) for k in kinds), *(urls or [])]
        while pending:
            with contextlib.suppress(httpx.HTTPError):
                target = pending[0]
                if target.endswith("/ping"):
                    answered = httpx.get(target, timeout=2).status_code == 200
                else:
                    body = {**BODY, "stream": False}
                    auth = {"authorization": f"Bearer {BENCH_KEY}"}
                    reply = httpx.post(target, json=body, headers=auth, timeout=5)
                    answered = reply.status_code == 200
                if answered:
                    pending.pop(0)
                    continue
            if time.monotonic() > deadline:
                waited = f"not ready after {timeout_s:.0f}s: {pending[0]}"
                raise SystemExit(f"{waited} (logs: {self.work})")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


PAYLOAD = json.dumps(BODY).encode()
HEADERS = {"content-type": "application/json", "authorization": f"Bearer {BENCH_KEY}"}


class Tally:
    """One kind's outcomes: the counts, the errors by reason and the complete streams'
    times to the first token and to the end."""

    def __init__(self) -> None:
        self.counts = {"sent": 0, "complete": 0, "failed": 0, "cut": 0}
        self.errors: dict[str, int] = {}
        self.first: list[float] = []
        self.total: list[float] = []

    def error(self, reason: str, outcome: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1
        self.counts[outcome] += 1

    def figures(self) -> dict[str, Any]:
        first, total = self.first, self.total
        ms = {
            "first_p50_ms": percentile(first, 0.5), "first_p99_ms": percentile(first, 0.99),
            "end_p50_ms": percentile(total, 0.5), "end_p99_ms": percentile(total, 0.99),
        }  # fmt: skip
        rounded = {k: round(v * 1000, 2) for k, v in ms.items()}
        return {**self.counts, **rounded, "errors": self.errors}


async def stream_one(client: httpx.AsyncClient, url: str, tally: Tally) -> None:
    """One streamed chat, its outcome and times added to `tally`."""
    tally.counts["sent"] += 1
    began = time.perf_counter()
    seen: float | None = None
    lines: list[str] = []
    outcome = "failed"
    try:
        async with client.stream("POST", url, content=PAYLOAD, headers=HEADERS) as r:
            if r.status_code != 200:
                await r.aread()
                raise RuntimeError(f"status {r.status_code}")
            outcome = "cut"
            async for line in r.aiter_lines():
                if seen is None and line.startswith("data:"):
                    seen = time.perf_counter() - began
                if line:
                    lines.append(line)
    except (httpx.HTTPError, RuntimeError) as error:
        tally.error(f"{type(error).__name__}: {str(error)[:60]}", outcome)
        return
    if lines and lines[-1] == DONE and seen is not None:
        tally.counts["complete"] += 1
        tally.first.append(seen)
        tally.total.append(time.perf_counter() - began)
    else:
        tally.error("ended without [DONE]", "cut")


async def stream_many(url: str, count: int, concurrency: int) -> dict[str, Any]:
    """`count` streamed chats, `concurrency` at a time: the counts and latencies."""
    gate = asyncio.Semaphore(concurrency)
    tally = Tally()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as client:

        async def one() -> None:
            async with gate:
                await stream_one(client, url, tally)

        await asyncio.gather(*(one() for _ in range(count)))
    return tally.figures()


async def stream_rounds(
    urls: dict[str, str], count: int, concurrency: int = 1, gap_s: float = 0.0, seed: int = 0
) -> dict[str, Tally]:
    """`count` rounds, each round `concurrency` streamed chats at once per URL, the URLs in
    turn (one stream at a time by default; kept-alive connections per URL), in an order
    shuffled every round (`seed`), `gap_s` of quiet before each stream (or batch): the URLs
    meet the same load on a shared machine. A stream sent straight after a direct one
    meets the engine simulator still finishing that one (0.2-0.3 ms later at p50), so no
    URL may always follow the direct one, as it did when a fixed order was rotated; with
    no gap, a URL still follows the direct one in about one round in as many as there are
    URLs, which the direct URL itself never does within a round."""
    tallies = {name: Tally() for name in urls}
    limits = httpx.Limits(max_connections=concurrency)
    clients = {name: httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) for name in urls}
    names = list(urls)
    shuffle = random.Random(seed).shuffle
    try:
        for _ in range(count):
            shuffle(names)
            for name in names:
                if gap_s:
                    await asyncio.sleep(gap_s)
                batch = [
                    stream_one(clients[name], urls[name], tallies[name]) for _ in range(concurrency)
                ]
                await asyncio.gather(*batch)
    finally:
        for client in clients.values():
            await client.aclose()
    return tallies


async def stream_interleaved(urls: dict[str, str], count: int) -> dict[str, dict[str, Any]]:
    """`stream_rounds` over each kind's URL: each kind's figures."""
    tallies = await stream_rounds(urls, count)
    return {kind: tally.figures() for kind, tally in tallies.items()}


@contextlib.contextmanager
def relay(
    kinds: list[str], baseline: bool, direct: bool, keep: bool, retries: bool = True,
    api_keys: bool = False, weights: bool = False, tried: Tried = NOTHING_TRIED,
) -> Iterator[Relay]:  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    found = Relay(work, baseline, direct, retries, api_keys, weights, tried)
    try:
        found.start(kinds)
        yield found
    finally:
        found.stop()
        if not keep:
            shutil.rmtree(work)


async def serve_keys(port: int) -> None:
    """gateway-config's key server (the key plugin's counts), until killed."""
    server = KeyServer(lambda: counts_token())
    await server.server.start(HOST, port)
    await asyncio.Event().wait()


def main() -> None:
    if sys.argv[1:2] == ["--serve-keys"]:
        asyncio.run(serve_keys(int(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per backend kind")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--baseline", action="store_true", help="without gateway.RELAY_FLAGS")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="route every backend straight from web (no h2c hop: the front door before it)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument(
        "--no-retries", action="store_true", help="routes without their retry middleware"
    )
    parser.add_argument(
        "--api-keys", action="store_true", help="every route checks the request's API key first"
    )
    parser.add_argument(
        "--weights", action="store_true", help="the replica service split 19:1 over two entries"
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="one stream at a time, the kinds in turn (--concurrency ignored)",
    )
    parser.add_argument(
        "--traefik-arg", action="append", default=[], metavar="FLAG",
        help="a flag added to both Traefiks' command line (a setting to try), repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--traefik-env", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable of both Traefiks (e.g. GOMAXPROCS=1), repeatable",
    )  # fmt: skip
    args = parser.parse_args()
    kinds, keep = args.kinds, args.keep_logs
    retries = not args.no_retries
    env = tuple(tuple(pair.split("=", 1)) for pair in args.traefik_env)
    tried = Tried(tuple(args.traefik_arg), env)
    with relay(
        kinds, args.baseline, args.direct, keep, retries, args.api_keys, args.weights, tried
    ) as found:
        if args.keep_logs:
            print(f"logs: {found.work}", file=sys.stderr)
        results: dict[str, dict[str, Any]] = {}
        idle_before = found.cpu_seconds()
        time.sleep(IDLE_S)
        cpu_before = found.cpu_seconds()
        began = time.monotonic()
        if args.interleave:
            urls = {kind: found.url(kind) for kind in kinds}
            results = asyncio.run(stream_interleaved(urls, args.requests))
        for kind in [] if args.interleave else kinds:
            figures = stream_many(found.url(kind), args.requests, args.concurrency)
            results[kind] = asyncio.run(figures)
        took = time.monotonic() - began
        idle = {n: (cpu_before[n] - t) / IDLE_S for n, t in idle_before.items()}
        cpu = {n: t - cpu_before[n] - idle[n] * took for n, t in found.cpu_seconds().items()}
        for kind, found_figures in results.items():
            print(json.dumps({"kind": kind, **found_figures}), flush=True)
    routed = sum(r["sent"] for kind, r in results.items() if kind in ROUTED)
    head = f"{'kind':8} {'sent':>6} {'failed':>6} {'cut':>5}"
    print(f"{head} {'ttft p50':>8} {'ttft p99':>8} {'end p50':>8} {'end p99':>8} (ms)")
    for kind, r in results.items():
        row = f"{kind:8} {r['sent']:6} {r['failed']:6} {r['cut']:5}"
        first = f"{r['first_p50_ms']:8.2f} {r['first_p99_ms']:8.2f}"
        print(f"{row} {first} {r['end_p50_ms']:8.1f} {r['end_p99_ms']:8.1f}")
    if routed:
        spent = ", ".join(f"{n} {t * 1000 / routed:.3f}" for n, t in cpu.items())
        print(f"CPU ms per routed request: {spent}")


if __name__ == "__main__":
    main()
