"""The front door under failure and with weights, on the local fleet's control Traefik.

Engine simulators started by the test are the ModelEndpoints (as in
`e2e/test_gateway_config.py`, whose gateway-config fixture this module reuses):

- one of two endpoints is SIGKILLed while chat completions arrive at 10 and at
  50 per second: every request is answered 200 (the route's retry sends what
  failed on the dead one to the other), and the latency during the loss is
  printed;
- the same with the replica path: each simulator behind an inference
  cluster's gateway (h2c from the front door, as endpoint-manager publishes a
  replica), and cluster `east` lost abruptly (`Fleet.stop`, every process
  SIGKILLed; started again afterwards);
- a canary entry at weight 1 against one at weight 19 gets 5% of 4,000
  requests within one percentage point; once the canary's endpoint is gone its
  share goes to the other entry, with no failed request.
"""

from __future__ import annotations

import functools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_config.backends import REPLICA_PUBLISHER
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.services import NAMESPACE as GATEWAY_NAMESPACE

from e2e.kube import Json, apply, wait_for
from e2e.simulator import call
from e2e.test_gateway_config import (
    API,
    CHAT,
    DEPLOYMENT,
    SIM_NAMESPACE,
    FrontDoor,
    endpoint,
    free_port,
    front_door,
    healthy,
    routed,
    serving,
    simulator,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
__all__ = ["front_door"]  # the fixture, imported so this module can use it
RUN_BEFORE_S = 3.0
RUN_AFTER_S = 3.0


class Sims:
    """Simulators of this module's own, so one can be killed without touching the others."""

    def __init__(self, address: str, logs: Path) -> None:
        self.address, self.logs = address, logs
        self.processes: dict[str, object] = {}
        self.urls: dict[str, str] = {}

    def start(self, name: str) -> str:
        port = free_port(self.address)
        self.processes[name] = simulator(self.address, port, name, self.logs)
        self.urls[name] = f"http://{self.address}:{port}"
        wait_for(f"{name} healthy", functools.partial(healthy, f"{self.urls[name]}/health"))
        return self.urls[name]

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()  # type: ignore[attr-defined]
        process.wait(10)  # type: ignore[attr-defined]


@pytest.fixture
def sims(front_door: FrontDoor, tmp_path: Path) -> Iterator[Sims]:
    started = Sims(front_door.address, tmp_path)
    try:
        yield started
    finally:
        for name in list(started.processes):
            started.kill(name)


def weighted_service(namespace: str, name: str, *entries: tuple[dict[str, str], int]) -> Json:
    return {
        "apiVersion": API,
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"endpoints": [{"selector": {"matchLabels": s}, "weight": w} for s, w in entries]},
    }


def load(url: str, rps: float, kill_at_s: float, end_s: float, kill: object) -> list[Json]:
    """Chat completions at `rps`, each on its own thread, for `end_s` seconds; `kill()` is
    called at `kill_at_s`. One record per request: when it started (s), status, latency (s)."""
    records: list[Json] = []
    lock = threading.Lock()

    def one(at: float) -> None:
        began = time.monotonic()
        status: int | str
        try:
            status = call(url, CHAT, timeout_s=20).status
        except OSError as error:
            status = f"{type(error).__name__}: {error}"
        with lock:
            records.append({"at": at, "status": status, "s": time.monotonic() - began})

    start = time.monotonic()
    threads, index, killed = [], 0, False
    while (at := index / rps) < end_s:
        time.sleep(max(0.0, start + at - time.monotonic()))
        if not killed and at >= kill_at_s:
            kill()  # type: ignore[operator]
            killed = True
        thread = threading.Thread(target=one, args=(at,))
        thread.start()
        threads.append(thread)
        index += 1
    for thread in threads:
        thread.join(30)
    return records


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(what: str, records: list[Json]) -> None:
    """Print the failures and the latencies before and in the 2 s after the loss; assert
    that every request was answered 200."""
    failed = [r for r in records if r["status"] != 200]
    during = [r["s"] for r in records if RUN_BEFORE_S <= r["at"] < RUN_BEFORE_S + 2]
    before = [r["s"] for r in records if r["at"] < RUN_BEFORE_S]
    print(
        f"\n{what}: {len(failed)} of {len(records)} failed; latency p50/p99 before "
        f"{p(before, 0.5) * 1000:.0f}/{p(before, 0.99) * 1000:.0f} ms, in the 2 s after "
        f"{p(during, 0.5) * 1000:.0f}/{p(during, 0.99) * 1000:.0f} ms"
    )
    assert failed == []


def replica_route(sim_url: str) -> list[Json]:
    """On an inference cluster: `/sim/` of its gateway routed to the simulator at `sim_url`
    (a selectorless Service and its EndpointSlice), as a replica's route would be."""
    host, port = sim_url.removeprefix("http://").rsplit(":", 1)
    meta = {"name": "sim", "namespace": GATEWAY_NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": int(port)}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {**meta, "labels": {"kubernetes.io/service-name": "sim"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": int(port)}],
         "endpoints": [{"addresses": [host], "conditions": {"ready": True}}]},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
         "spec": {"parentRefs": [{"name": "modelplane-inference",
                                  "namespace": GATEWAY_NAMESPACE}],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/sim/"}}],
                             "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {
                                 "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
                             "backendRefs": [{"name": "sim", "port": int(port)}]}]}},
    ]  # fmt: skip


@pytest.mark.parametrize("rps", [10, 50])
def test_losing_a_cluster_under_load_fails_no_request(
    local_fleet: Fleet, front_door: FrontDoor, sims: Sims, namespace: str, rps: int
) -> None:
    control = front_door.control
    labels = {DEPLOYMENT: "chat", "app.kubernetes.io/managed-by": REPLICA_PUBLISHER}
    for name in ("east", "west"):
        apply(local_fleet.cluster(name), *replica_route(sims.start(name)))
        gateway = f"http://{local_fleet.cluster(name).plan.address}"
        apply(control, endpoint(namespace, name, gateway, "/sim/", **labels))
    apply(control, weighted_service(namespace, "chat", (labels, 1)))
    wait_for("chat routed to two endpoints", lambda: routed(control, namespace, "chat", 2))
    base = f"http://{front_door.address}/{namespace}/chat"
    pods = {f"{SIM_NAMESPACE}/east", f"{SIM_NAMESPACE}/west"}
    wait_for("both clusters to answer", lambda: serving(f"{base}/health", 12) == pods, 60)
    try:
        records = load(
            f"{base}/v1/chat/completions", rps, RUN_BEFORE_S, RUN_BEFORE_S + RUN_AFTER_S,
            lambda: local_fleet.stop("east"),
        )  # fmt: skip
    finally:
        local_fleet.start("east")
    report(f"{rps}/s, cluster east lost", records)


@pytest.mark.parametrize("rps", [10, 50])
def test_killing_one_of_two_endpoints_under_load_fails_no_request(
    front_door: FrontDoor, sims: Sims, namespace: str, rps: int
) -> None:
    control = front_door.control
    labels = {DEPLOYMENT: "chat"}
    apply(
        control,
        endpoint(namespace, "live", sims.start("live"), **labels),
        endpoint(namespace, "doomed", sims.start("doomed"), **labels),
        weighted_service(namespace, "chat", (labels, 1)),
    )
    wait_for("chat routed to two endpoints", lambda: routed(control, namespace, "chat", 2))
    base = f"http://{front_door.address}/{namespace}/chat"
    pods = {f"{SIM_NAMESPACE}/live", f"{SIM_NAMESPACE}/doomed"}
    wait_for("both to answer", lambda: serving(f"{base}/health", 12) == pods, 30)

    records = load(
        f"{base}/v1/chat/completions", rps, RUN_BEFORE_S, RUN_BEFORE_S + RUN_AFTER_S,
        lambda: sims.kill("doomed"),
    )  # fmt: skip
    report(f"{rps}/s, one of two endpoints killed", records)
    assert len(records) == rps * (RUN_BEFORE_S + RUN_AFTER_S)
    # the dead endpoint stays selected (nobody withdraws a manual ModelEndpoint): no failure
    assert serving(f"{base}/health", 20) == {f"{SIM_NAMESPACE}/live"}


def shares(url: str, requests: int, threads: int = 8) -> tuple[Counter[str], list[int]]:
    """Who answered `requests` GETs of `url` (sent by `threads` threads), and the statuses
    that were not 200."""
    pods: Counter[str] = Counter()
    errors: list[int] = []
    lock = threading.Lock()

    def run(count: int) -> None:
        for _ in range(count):
            reply = call(url)
            with lock:
                if reply.status == 200:
                    pods[reply.pod] += 1
                else:
                    errors.append(reply.status)

    workers = [threading.Thread(target=run, args=(requests // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    return pods, errors


def test_a_canary_at_weight_1_against_19_gets_5_percent_and_nothing_once_it_is_gone(
    front_door: FrontDoor, sims: Sims, namespace: str
) -> None:
    control = front_door.control
    stable, canary = {DEPLOYMENT: "chat"}, {DEPLOYMENT: "chat-canary"}
    apply(
        control,
        endpoint(namespace, "stable-1", sims.start("stable-1"), **stable),
        endpoint(namespace, "stable-2", sims.start("stable-2"), **stable),
        endpoint(namespace, "canary", sims.start("canary"), **canary),
        weighted_service(namespace, "chat", (stable, 19), (canary, 1)),
    )
    wait_for("chat routed to three endpoints", lambda: routed(control, namespace, "chat", 3))
    url = f"http://{front_door.address}/{namespace}/chat/v1/models"
    everyone = {f"{SIM_NAMESPACE}/{n}" for n in ("stable-1", "stable-2", "canary")}
    wait_for("all three to answer", lambda: serving(url, 60) == everyone, 30)

    pods, errors = shares(url, 4000)
    assert errors == []
    assert sum(pods.values()) == 4000
    fraction = pods[f"{SIM_NAMESPACE}/canary"] / 4000
    print(f"\ncanary at weight 1 of 20: {fraction:.2%} of 4,000 requests; {dict(pods)}")
    assert abs(fraction - 0.05) <= 0.01
    # the stable entry's 95% is spread evenly over its two endpoints
    assert abs(pods[f"{SIM_NAMESPACE}/stable-1"] / 4000 - 0.475) <= 0.02

    control.kubectl("delete", "modelendpoint", "-n", namespace, "canary")
    wait_for("chat routed to two endpoints", lambda: routed(control, namespace, "chat", 2))
    stable_pods = {f"{SIM_NAMESPACE}/stable-1", f"{SIM_NAMESPACE}/stable-2"}
    wait_for("the canary's share gone", lambda: serving(url, 40) == stable_pods, 30)
    pods, errors = shares(url, 400)
    assert (errors, set(pods), sum(pods.values())) == ([], stable_pods, 400)
    assert statistics.pstdev(pods.values()) <= 40  # spread evenly, within 10%
