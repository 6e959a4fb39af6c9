"""Issue 19: failover and overflow from the fleet to an external provider at priority 1.

ModelService `chat` has two entries: the fleet (an engine simulator behind each
inference cluster's gateway, reached over h2c as endpoint-manager publishes a
replica) at the default priority 0, and the HTTPS provider of
`e2e/test_external_provider.py` (its fixture: the simulator outside the
clusters with a certificate from the fleet's CA, gateway-config trusting that
CA) at priority 1. Chat completions through the service address:

- while both engines serve, the provider gets none;
- one engine refusing inference with 503 (declared unhealthy, as an engine at
  capacity or in trouble answers): what lands on it goes to the provider, the
  other engine keeps its share, nothing fails;
- the engines saturated (each runs 2 at once and queues the rest, as vLLM
  does; 16 requests at a time): with the fleet entry's `maxInFlight: 2` the
  front door answers the excess 429 and it goes to the provider; nothing fails;
- both inference clusters stopped abruptly (`Fleet.stop`, their endpoints left
  selected as nobody withdraws them): every request is answered by the
  provider;
- the clusters back: traffic returns to the fleet;
- the fleet's ModelEndpoints withdrawn while requests arrive: the provider
  takes over with no failed request (the fleet's tier then answers 503 at once).
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from gateway_config.backends import REPLICA_PUBLISHER
from gateway_config.render import link_name
from modelplane_localfleet.fleet import Fleet

from e2e.kube import Json, apply, get, wait_for
from e2e.simulator import call
from e2e.test_external_provider import (
    API,
    POD_NAMESPACE,
    PORT,
    PROVIDER,
    Backends,
    backends,
)
from e2e.test_front_door import replica_route
from e2e.test_gateway_config import free_port, healthy, routed

pytestmark = pytest.mark.usefixtures("local_fleet")
__all__ = ["backends"]  # the fixture, imported so this module can use it
CLUSTERS = ("east", "west")
CONCURRENCY = 2
FLEET_LABELS = {
    "modelplane.ai/deployment": "chat",
    "app.kubernetes.io/managed-by": REPLICA_PUBLISHER,
}
PROVIDER_POD = f"{POD_NAMESPACE}/provider"
ENGINE = (f"--max-concurrency={CONCURRENCY}", "--tpot-ms=20")
"""Each fleet engine runs 2 requests at once (about 100 ms each) and queues the rest."""
CHAT = {"model": "qwen", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


def chats(url: str, requests: int, threads: int = 8) -> tuple[Counter[str], list[object]]:
    """Who answered `requests` chat completions (`threads` at a time), and every answer that
    was not a 200 (its status, or the error)."""
    pods: Counter[str] = Counter()
    failed: list[object] = []
    lock = threading.Lock()

    def run(count: int) -> None:
        for _ in range(count):
            try:
                reply = call(url, CHAT, timeout_s=20)
            except OSError as error:
                with lock:
                    failed.append(repr(error))
                continue
            with lock:
                if reply.status == 200:
                    pods[reply.pod] += 1
                else:
                    failed.append((reply.status, reply.body))

    workers = [threading.Thread(target=run, args=(requests // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    return pods, failed


def answered_by(url: str, pods: set[str], threads: int = 8) -> bool:
    """Whether 16 chat completions were all answered 200, by exactly `pods`."""
    found, failed = chats(url, 16, threads)
    return not failed and set(found) == pods


@pytest.fixture
def fleet_engines(local_fleet: Fleet, backends: Backends) -> Iterator[dict[str, str]]:
    """A simulator behind each inference cluster's gateway: name -> its own URL."""
    urls = {}
    for name in CLUSTERS:
        port = free_port(backends.address)
        backends.simulator(name, backends.address, port, *ENGINE)
        urls[name] = f"http://{backends.address}:{port}"
        apply(local_fleet.cluster(name), *replica_route(urls[name]))
    yield urls


def model_service(namespace: str, **bound: int) -> Json:
    return {
        "apiVersion": API,
        "kind": "ModelService",
        "metadata": {"name": "chat", "namespace": namespace},
        "spec": {
            "endpoints": [
                {"selector": {"matchLabels": FLEET_LABELS}, **bound},
                {"selector": {"matchLabels": {"role": "fallback"}}, "priority": 1},
            ]
        },
    }


def endpoint(namespace: str, name: str, url: str, rewrite: str, labels: dict[str, str]) -> Json:
    return {
        "apiVersion": API,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"url": url, "rewritePath": rewrite},
    }


def declare(url: str, healthy_: bool) -> None:
    reply = call(f"{url}/simulator/health", {"healthy": healthy_})
    assert reply.status == 200, reply


def test_the_provider_takes_over_what_the_fleet_refuses_or_cannot_serve(
    local_fleet: Fleet, backends: Backends, fleet_engines: dict[str, str], namespace: str
) -> None:
    control = backends.control
    objects = [
        endpoint(
            namespace, name, f"http://{local_fleet.cluster(name).plan.address}", "/sim/",
            FLEET_LABELS,
        )
        for name in CLUSTERS
    ]  # fmt: skip
    objects.append(
        endpoint(namespace, "provider", f"https://{PROVIDER[0]}:{PORT}", "/", {"role": "fallback"})
    )
    apply(control, *objects, model_service(namespace))
    wait_for("chat routed to three endpoints", lambda: routed(control, namespace, "chat", 3))
    # written before the status that says the service is routed
    link = get(control, "traefikservice", "-n", namespace, link_name("chat", 0))
    assert link["spec"]["failover"]["errors"]["status"] == ["429", "500", "502-504"]
    url = f"http://{backends.address}/{namespace}/chat/v1/chat/completions"
    fleet = {f"{POD_NAMESPACE}/{name}" for name in CLUSTERS}
    wait_for("both engines to answer", lambda: answered_by(url, fleet), 60)

    # both engines serve: the fallback gets nothing
    pods, failed = chats(url, 400)
    print(f"\nfleet serving: {dict(pods)}")
    assert (failed, set(pods), sum(pods.values())) == ([], fleet, 400)

    # west refuses with 503: its requests go to the provider, east keeps its share
    declare(fleet_engines["west"], False)
    try:
        pods, failed = chats(url, 400)
    finally:
        declare(fleet_engines["west"], True)
    print(f"west refusing with 503: {dict(pods)}")
    assert failed == []
    assert set(pods) == {f"{POD_NAMESPACE}/east", PROVIDER_POD}
    # the round robin alternates: about half went to west, and on to the provider
    assert 0.35 <= pods[PROVIDER_POD] / 400 <= 0.65

    # engines saturated: bounded at what they run at once, the excess goes to the provider
    # (unbounded, they queue it and the provider gets nothing, as above)
    apply(control, model_service(namespace, maxInFlight=CONCURRENCY))
    wait_for("the bound applied", lambda: chats(url, 32, threads=16)[0][PROVIDER_POD] > 0, 60)
    pods, failed = chats(url, 800, threads=16)
    print(f"16 at once against 2 x {CONCURRENCY} slots: {dict(pods)}")
    assert failed == []
    assert set(pods) == fleet | {PROVIDER_POD}
    assert pods[PROVIDER_POD] >= 200  # at most 4 of 16 in flight at the fleet
    apply(control, model_service(namespace))
    # (the route drops the bound first, its Middleware goes a settle time later:
    # `gateway_config.handover`, proved under load by `e2e/test_front_door_edits.py`)
    wait_for("the bound lifted", lambda: answered_by(url, fleet, threads=8), 60)

    # both clusters lost abruptly: the provider answers everything
    try:
        for name in CLUSTERS:
            local_fleet.stop(name)
        pods, failed = chats(url, 400)
        print(f"both clusters stopped: {dict(pods)}")
        assert (failed, dict(pods)) == ([], {PROVIDER_POD: 400})
    finally:
        for name in CLUSTERS:
            local_fleet.start(name)

    # the clusters back: traffic returns to the fleet
    for name in CLUSTERS:
        cluster_url = f"http://{local_fleet.cluster(name).plan.address}/sim/health"
        wait_for(f"{name}'s gateway to serve", functools.partial(healthy, cluster_url), 120)
    wait_for("the fleet to serve again", lambda: answered_by(url, fleet), 120)
    pods, failed = chats(url, 400)
    print(f"clusters back: {dict(pods)}")
    assert (failed, set(pods)) == ([], fleet)

    # the fleet's endpoints withdrawn under load (as endpoint-manager withdraws a lost
    # replica's): its tier answers 503 at once and the provider takes over, nothing fails
    results: list[tuple[Counter[str], list[object]]] = []
    load = threading.Thread(target=lambda: results.append(chats(url, 800)))
    load.start()
    control.kubectl("delete", "modelendpoint", "-n", namespace, *CLUSTERS)
    wait_for("chat routed to the provider alone", lambda: routed(control, namespace, "chat", 1))
    load.join(300)
    ((pods, failed),) = results
    print(f"fleet endpoints withdrawn under load: {dict(pods)}")
    assert failed == []
    assert set(pods) == fleet | {PROVIDER_POD}
    wait_for("the provider alone", lambda: answered_by(url, {PROVIDER_POD}), 30)
