"""Issue 19: a ModelService's spec edited under load, keys on: no 404, no 5xx.

gateway-config (its key server on the control address, keys required: the
`keyed` front door of `e2e/test_front_door_keys.py`) routes ModelService `chat`
over engine simulators on the control address (plain HTTP: through the h2c hop,
so every edit also touches hop Services and hop routes). Chat completions arrive
at 20 per second with the key `load` throughout, while the spec is edited, each
edit once the last took effect:

- a bound (`maxInFlight`) added to entry 0 (a new inFlightReq Middleware), then
  changed, later lifted (the Middleware removed);
- a key added (`bob`: answered) and revoked (401), the key Middleware changed in
  place;
- entry 1's weight changed;
- a fallback entry (priority 1: the failover TraefikService and its tiers) added and
  removed;
- an entry added over a third simulator (its backend, hop Service and hop route)
  and removed.

Every request of the load is answered 200 (before the handover of
`gateway_config.handover`, the bound's edits alone met 404s). Printed: how long
each edit took to take effect, from the `kubectl apply` to the ModelService's
status showing the new generation (gateway-config writes it with the route, once
the objects the route needs have settled; Traefik loads it within its 2 s
throttle after that), and for the keys and the added entry, to the first request
showing it.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from e2e.kube import Json, apply, get, wait_for
from e2e.test_front_door_keys import KEY_NAMESPACE, key_secret, keyed
from e2e.test_gateway_config import (
    API,
    CHAT,
    DEPLOYMENT,
    SIM_NAMESPACE,
    FrontDoor,
    endpoint,
    free_port,
    healthy,
    routed,
    simulator,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
__all__ = ["keyed"]  # the fixture, imported so this module can use it
RATE = 20.0
LOAD_KEY = "sk-e2e-load-0123456789abcdef"
BOB = "sk-e2e-edits-bob-0123456789abcdef"
SIMS = ("sim-b", "sim-c")


class Load:
    """Chat completions at `RATE` per second (each on its own thread) until `stop`: what
    each answered, by status and by pod."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[int | str] = Counter()
        self.pods: Counter[str] = Counter()
        self.failures: list[tuple[float, int | str, str]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.began = time.monotonic()
        self.runner = threading.Thread(target=self.run)

    def one(self) -> None:
        at = time.monotonic() - self.began
        status: int | str
        try:
            reply = httpx.post(self.url, json=CHAT, timeout=20,
                               headers={"Authorization": f"Bearer {LOAD_KEY}"})  # fmt: skip
            status, pod, text = (
                reply.status_code,
                reply.headers.get("x-modelplane-pod", ""),
                reply.text,
            )
        except httpx.HTTPError as error:
            status, pod, text = type(error).__name__, "", str(error)
        with self.lock:
            self.statuses[status] += 1
            if status == 200:
                self.pods[pod] += 1
            else:
                self.failures.append((round(at, 2), status, text[:200]))

    def run(self) -> None:
        threads = []
        index = 0
        while not self.done.is_set():
            time.sleep(max(0.0, self.began + index / RATE - time.monotonic()))
            thread = threading.Thread(target=self.one)
            thread.start()
            threads.append(thread)
            index += 1
        for thread in threads:
            thread.join(30)

    def __enter__(self) -> Load:
        self.runner.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.runner.join(60)


@pytest.fixture
def more_sims(keyed: FrontDoor, tmp_path: Path) -> Iterator[dict[str, str]]:
    started: list[subprocess.Popen[bytes]] = []
    urls = {}
    try:
        for name in SIMS:
            port = free_port(keyed.address)
            started.append(simulator(keyed.address, port, name, tmp_path))
            urls[name] = f"http://{keyed.address}:{port}"
            wait_for(f"{name} healthy", functools.partial(healthy, f"{urls[name]}/health"))
        yield urls
    finally:
        for process in started:
            process.kill()
            process.wait(10)
        for name in ("load", "bob"):
            keyed.control.kubectl(
                "delete", "secret", "-n", KEY_NAMESPACE, name, "--wait=false", check=False
            )


def chat_service(namespace: str, *entries: Json) -> Json:
    return {"apiVersion": API, "kind": "ModelService",
            "metadata": {"name": "chat", "namespace": namespace},
            "spec": {"endpoints": list(entries)}}  # fmt: skip


def entry(deployment: str, **fields: int) -> Json:
    return {"selector": {"matchLabels": {DEPLOYMENT: deployment}}, **fields}


def test_spec_edits_under_load_answer_every_request(
    keyed: FrontDoor, more_sims: dict[str, str], namespace: str
) -> None:
    control = keyed.control
    apply(
        control,
        key_secret("load", LOAD_KEY, f"{namespace}/chat"),
        endpoint(namespace, "sim-a", keyed.backends["sim-a"], **{DEPLOYMENT: "a"}),
        endpoint(namespace, "sim-b", more_sims["sim-b"], **{DEPLOYMENT: "b"}),
        chat_service(namespace, entry("a"), entry("b")),
    )
    wait_for("chat routed", lambda: routed(control, namespace, "chat", 2), 60)
    url = f"http://{keyed.address}/{namespace}/chat/v1/chat/completions"
    shown = {"Authorization": f"Bearer {LOAD_KEY}"}

    def answers() -> bool:
        replies = [httpx.post(url, json=CHAT, headers=shown, timeout=20) for _ in range(8)]
        return all(r.status_code == 200 for r in replies)

    wait_for("chat answered with the load key", answers, 60)
    bob = {"Authorization": f"Bearer {BOB}"}

    def bob_gets(status: int) -> Callable[[], bool]:
        return lambda: httpx.post(url, json=CHAT, headers=bob, timeout=20).status_code == status

    def generation_applied() -> bool:
        found = get(control, "modelservice", "-n", namespace, "chat")
        ready = [c for c in (found.get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"]  # fmt: skip
        return (
            bool(ready)
            and ready[0].get("observedGeneration") == found["metadata"]["generation"]
            and ready[0]["status"] == "True"
        )

    def answered_by_c() -> bool:
        with load.lock:
            return load.pods[f"{SIM_NAMESPACE}/sim-c"] > 0

    sim_c = endpoint(namespace, "sim-c", more_sims["sim-c"], **{DEPLOYMENT: "c"})
    edits: list[tuple[str, list[Json], Callable[[], bool]]] = [
        ("a bound added", [chat_service(namespace, entry("a", maxInFlight=50), entry("b"))],
         generation_applied),
        ("the bound changed", [chat_service(namespace, entry("a", maxInFlight=40), entry("b"))],
         generation_applied),
        ("a key added", [key_secret("bob", BOB, f"{namespace}/chat")], bob_gets(200)),
        ("entry 1's weight", [chat_service(namespace, entry("a", maxInFlight=40),
                                           entry("b", weight=3))], generation_applied),
        ("a fallback entry", [sim_c, chat_service(namespace, entry("a", maxInFlight=40),
                                                  entry("b", weight=3),
                                                  entry("c", priority=1))], generation_applied),
        ("the fallback removed", [chat_service(namespace, entry("a", maxInFlight=40),
                                               entry("b", weight=3))], generation_applied),
        ("an entry added", [chat_service(namespace, entry("a", maxInFlight=40),
                                         entry("b", weight=3), entry("c"))], answered_by_c),
        ("the entry removed", [chat_service(namespace, entry("a", maxInFlight=40),
                                            entry("b", weight=3))], generation_applied),
        ("the bound lifted", [chat_service(namespace, entry("a"), entry("b", weight=3))],
         generation_applied),
    ]  # fmt: skip
    took: dict[str, float] = {}
    with Load(url) as load:
        time.sleep(3)
        for name, objects, effective in edits:
            began = time.monotonic()
            apply(control, *objects)
            wait_for(f"{name} in effect", effective, 60, every_s=0.1)
            took[name] = time.monotonic() - began
            time.sleep(4)  # the load goes on through Traefik's reload and the clean-up
        began = time.monotonic()
        control.kubectl("delete", "secret", "-n", KEY_NAMESPACE, "bob")
        wait_for("bob's key refused", bob_gets(401), 30, every_s=0.1)
        took["a key revoked"] = time.monotonic() - began
        time.sleep(4)
    total = sum(load.statuses.values())
    print(f"\n{total} requests at {RATE:g}/s while editing: {dict(load.statuses)}; "
          f"answered by {dict(load.pods)}")  # fmt: skip
    for name, seconds in took.items():
        print(f"  {name}: in effect after {seconds:.2f} s")
    assert load.failures == [], load.failures[:10]
    assert load.statuses[200] == total >= 20 * RATE
    assert load.pods[f"{SIM_NAMESPACE}/sim-c"] > 0  # the added entry did serve
