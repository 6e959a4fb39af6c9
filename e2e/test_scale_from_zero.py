"""Issue 18 end to end: a request to a ModelService at zero is held, wakes KEDA, is answered.

The session fleet with KEDA (`up --keda`); cluster-provisioner, fleet-scheduler,
endpoint-manager (`--scaler-address`: KEDA's external scaler and the `Activation`
API), gateway-config (`--activator-url`) and the activator (`--scaler` at
endpoint-manager, mutual TLS) run as their own processes; nothing stands in for
another. The documentation's qwen3-8b ModelDeployment at 0 replicas, its
ModelService with `spec.scaleToZero`, and a ScaledObject (kr8s) with
`minReplicaCount: 0` and one `external-push` trigger on endpoint-manager's scaler:

- a chat completion through the front door is held by the activator, which reports
  it; the scaler pushes "active" to KEDA, KEDA scales the deployment 0 -> 1, the
  fleet places the replica, the engine starts, and the held request is answered 200
  with its wait in `X-Modelplane-Held-Seconds` (printed, with the time KEDA took);
- a streamed request sent right after is held as well and streamed whole;
- with nothing held or in flight, KEDA takes the deployment back to 0 after the
  cooldown, and the route goes back to the activator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import kr8s
import pytest
from modelplane_localfleet.fleet import Fleet

from e2e.kube import apply, get, wait_for
from e2e.services import Service, serving_from_zero
from e2e.test_keda import (  # noqa: F401  (keda_fleet is a fixture)
    ScaledObject,
    keda_fleet,
    keda_status,
    qwen,
    replicas,
)
from e2e.test_keda_scaler import model_service, scaled_object, trigger_auth

pytestmark = [
    pytest.mark.usefixtures("local_fleet"),
    pytest.mark.filterwarnings("ignore:Kubernetes version .* is not supported:UserWarning"),
]
FLEET_API_PORT = 50241
SCALER_PORT = 50243
ACTIVATOR_PORT = 18097
HELD = "x-modelplane-held-seconds"
CHAT = {"model": "qwen", "messages": [{"role": "user", "content": "wake up"}], "max_tokens": 8}


@pytest.fixture(scope="module")
def scaler_address(keda_fleet: Fleet) -> str:  # noqa: F811
    return f"{keda_fleet.cluster('control').plan.address}:{SCALER_PORT}"


@pytest.fixture(scope="module")
def services(
    keda_fleet: Fleet,  # noqa: F811
    scaler_address: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    with serving_from_zero(
        keda_fleet, 9191, FLEET_API_PORT, scaler_address, ACTIVATOR_PORT, logs
    ) as ready:
        yield ready


def front_door_address(control: Any, namespace: str, name: str) -> str | None:
    found = get(control, "modelservice", "-n", namespace, name)
    address: str | None = (found.get("status") or {}).get("address")
    return address


def test_the_first_request_at_zero_is_held_wakes_keda_and_is_answered(
    keda_fleet: Fleet,  # noqa: F811
    services: dict[str, Service],
    namespace: str,
    scaler_address: str,
) -> None:
    control = keda_fleet.cluster("control")
    service = model_service(namespace)
    service["spec"]["scaleToZero"] = {"holdTimeoutSeconds": 300}
    name = service["metadata"]["name"]
    apply(control, qwen(namespace), service)
    api = kr8s.api(kubeconfig=str(control.kubeconfig_path))
    auth = trigger_auth(keda_fleet, namespace, api)
    ScaledObject(scaled_object(namespace, scaler_address, auth, 0), api=api).create()
    wait_for(
        "ScaledObject READY, not ACTIVE",
        lambda: keda_status(control, namespace, "qwen") == {"Ready": "True", "Active": "False"},
        120,
        1,
    )
    assert replicas(control, namespace) == 0
    door = wait_for(
        "the service's address", lambda: front_door_address(control, namespace, name), 120, 1
    )
    url = f"{door}/v1/chat/completions"

    answers: dict[str, httpx.Response] = {}
    streamed: list[str] = []
    woke_at: list[float] = []

    def routed(send: Any) -> Any:
        """send() again while Traefik answers its own 404 (the route to the activator not
        loaded yet: the ModelService's address comes before Traefik has read its route)."""
        deadline = time.monotonic() + 60
        while True:
            reply = send()
            if reply is not None or time.monotonic() > deadline:
                return reply
            time.sleep(0.5)

    def chat() -> None:
        def once() -> httpx.Response | None:
            reply = httpx.post(url, json=CHAT, timeout=300, trust_env=False)
            return None if reply.status_code == 404 else reply

        answers["chat"] = routed(once)

    def stream() -> None:
        def once() -> httpx.Response | None:
            with httpx.stream(
                "POST", url, json={**CHAT, "stream": True}, timeout=300, trust_env=False
            ) as reply:
                if reply.status_code == 404:
                    reply.read()
                    return None
                streamed.extend(line for line in reply.iter_lines() if line)
                return reply

        answers["stream"] = routed(once)

    began = time.monotonic()
    threads = [threading.Thread(target=chat), threading.Thread(target=stream)]
    for thread in threads:
        thread.start()
        time.sleep(0.5)
    wait_for(
        "KEDA's 0 -> 1 on the held requests", lambda: replicas(control, namespace) == 1, 120, 0.5
    )
    woke_at.append(time.monotonic() - began)
    for thread in threads:
        thread.join(300)
    answered = time.monotonic() - began
    chat_reply, stream_reply = answers["chat"], answers["stream"]
    assert chat_reply.status_code == 200, chat_reply.text[:300]
    assert chat_reply.json()["choices"][0]["message"]["content"]
    assert float(chat_reply.headers[HELD]) > 0
    assert stream_reply.status_code == 200
    assert float(stream_reply.headers[HELD]) > 0
    assert streamed[-1] == "data: [DONE]", streamed[-3:]
    print(
        f"\nheld requests -> KEDA at 1: {woke_at[0]:.1f} s; -> answered: {answered:.1f} s "
        f"(held {float(chat_reply.headers[HELD]):.1f} s, placement and engine start included)"
    )
    wait_for(
        "ScaledObject ACTIVE", lambda: keda_status(control, namespace, "qwen")["Active"] == "True",
        60, 1,
    )  # fmt: skip

    # served now: once gateway-config has routed the endpoint, requests go straight to the
    # replica (no activator on the path: no held header)
    def straight() -> bool:
        reply = httpx.post(url, json=CHAT, timeout=60, trust_env=False)
        assert reply.status_code == 200, reply.text[:300]
        return HELD not in reply.headers

    wait_for("a request answered without the activator", straight, 60, 1)

    wait_for("back to 0 after the cooldown", lambda: replicas(control, namespace) == 0, 240, 1)
    wait_for(
        "ScaledObject not ACTIVE",
        lambda: keda_status(control, namespace, "qwen")["Active"] == "False",
        120,
        1,
    )
