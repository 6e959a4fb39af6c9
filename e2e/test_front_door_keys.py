"""Issue 19: API keys per caller at the front door, on the local fleet's control Traefik.

gateway-config runs with its key server on the control address; the
InferenceGateway `default` requires keys (`spec.apiKeys.required`). Keys are
Secrets of `modelplane-api-keys` labelled `modelplane.ai/api-key`; gateway-config
(its own identity) may list Secrets there and not in `modelplane-system`, where
a Secret with the same label and a key for every service is not honoured (401). Against a
ModelService `chat` over one engine simulator: no key, or a wrong one, is a 401
in the OpenAI error shape (the `openai` SDK raises `AuthenticationError`) and
never reaches the engine (its finished-request count does not move); the right
key is answered through both the `openai` (`Authorization: Bearer`) and the
`anthropic` (`x-api-key`) SDKs, and a backend that echoes its request headers
sees the key id and neither key header; a key scoped to another service is a 403
(`PermissionDeniedError`); the Gateway's hop listener, asked directly on the
hop prefix of the service's backend, answers 404 with no key, with the right
key or with a made-up hop token, and routes only with the token the applied
route sets; deleting the key's Secret makes it a 401 within 5 s (gateway-config
re-renders the key plugin's Middleware, Traefik's CRD provider reloads it);
gateway-config's `/metrics` counts the requests by key id (reported by the plugin
every few seconds, with the counts token rendered into its Middleware; a report
made up without it is a 401 and counts nothing) and never shows a key.
"""

from __future__ import annotations

import base64
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack

import anthropic
import httpx
import openai
import pytest
from gateway_config.hop import DEFAULT_PORT as HOP_PORT
from gateway_config.hop import prefix as hop_prefix
from gateway_config.keys import HOP_HEADER
from modelplane_localfleet.fleet import Fleet

from e2e.kube import Json, apply, get, wait_for
from e2e.services import Service
from e2e.test_gateway_config import (
    API,
    DEPLOYMENT,
    FrontDoor,
    endpoint,
    free_port,
    gateway_ready,
    healthy,
    routed,
    simulator,
)
from tests.headerecho import serving

pytestmark = pytest.mark.usefixtures("local_fleet")
SYSTEM_NAMESPACE = "modelplane-system"  # the clusters' kubeconfig Secrets
KEY_NAMESPACE = "modelplane-api-keys"
STATUS_PORT = 9127
KEY_PORT = 9128
ALICE = "sk-e2e-alice-0123456789abcdef"
BOB = "sk-e2e-bob-0123456789abcdef"
MALLORY = "sk-e2e-mallory-0123456789abcdef"  # in the wrong namespace
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "hello"}
]


class KeyedFrontDoor(FrontDoor):
    """gateway-config with its key server on the control address, where Traefik reaches it."""

    def start(self) -> None:
        self.service = Service(
            self.fleet, "gateway-config", "gateway_config", STATUS_PORT,
            self.logs / "gateway-config.log", f"--api-key-address={self.address}:{KEY_PORT}",
        )  # fmt: skip


def inference_gateway(required: bool) -> Json:
    spec = {"backend": "Traefik", "apiKeys": {"required": required}}
    return {"apiVersion": API, "kind": "InferenceGateway", "metadata": {"name": "default"},
            "spec": spec}  # fmt: skip


def key_secret(name: str, key: str, services: str, namespace: str = KEY_NAMESPACE) -> Json:
    data = {"key": key, "services": services}
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"modelplane.ai/api-key": "true"}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }  # fmt: skip


@pytest.fixture(scope="module")
def keyed(local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    logs = tmp_path_factory.mktemp("front-door-keys")
    door = KeyedFrontDoor(local_fleet, logs)
    echo = ExitStack()
    door.backends["echo"] = f"http://{door.address}:{echo.enter_context(serving(door.address))}"
    sims = []
    try:  # everything started is stopped below, whatever fails first
        port = free_port(door.address)
        sims.append(simulator(door.address, port, "sim-a", logs))
        door.backends["sim-a"] = f"http://{door.address}:{port}"
        door.start()
        wait_for("sim-a healthy", lambda: healthy(f"{door.backends['sim-a']}/health"))
        apply(door.control, inference_gateway(required=True))
        wait_for("InferenceGateway default Ready", lambda: gateway_ready(door.control), 60)
        yield door
    finally:
        door.stop()
        echo.close()
        for sim in sims:
            sim.kill()
            sim.wait(10)
        door.control.kubectl("delete", "inferencegateway", "default", "--wait=false", check=False)
        for namespace, name in (
            (KEY_NAMESPACE, "alice"), (KEY_NAMESPACE, "bob"), (SYSTEM_NAMESPACE, "mallory")
        ):  # fmt: skip
            door.control.kubectl(
                "delete", "secret", "-n", namespace, name, "--wait=false", check=False
            )
        log = logs / "gateway-config.log"
        if log.exists():
            print(log.read_text()[-4000:])


def can_list_secrets(door: FrontDoor, namespace: str) -> bool:
    """The API server's answer: may gateway-config's identity list Secrets of `namespace`?"""
    answer = door.control.kubectl(
        "auth", "can-i", "list", "secrets", "-n", namespace, "--as=modelplane:gateway-config",
        check=False,
    )  # fmt: skip
    return answer.stdout.strip() == "yes"


def engine_requests(url: str) -> float:
    """The simulator's finished requests (`vllm:request_success_total`, every reason)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total{")
    )


def test_only_a_key_scoped_to_the_service_reaches_the_engine(
    keyed: FrontDoor, namespace: str
) -> None:
    control = keyed.control
    labels = {DEPLOYMENT: "keys"}
    apply(
        control,
        key_secret("alice", ALICE, f"{namespace}/chat, {namespace}/echo"),
        key_secret("bob", BOB, f"{namespace}/other"),
        key_secret("mallory", MALLORY, "*", namespace=SYSTEM_NAMESPACE),
        endpoint(namespace, "sim-a", keyed.backends["sim-a"], **labels),
        {"apiVersion": API, "kind": "ModelService",
         "metadata": {"name": "chat", "namespace": namespace},
         "spec": {"endpoints": [{"selector": {"matchLabels": labels}}]}},
    )  # fmt: skip
    echo_labels = {DEPLOYMENT: "echo"}
    apply(
        control,
        endpoint(namespace, "echo", keyed.backends["echo"], **echo_labels),
        {"apiVersion": API, "kind": "ModelService",
         "metadata": {"name": "echo", "namespace": namespace},
         "spec": {"endpoints": [{"selector": {"matchLabels": echo_labels}}]}},
    )  # fmt: skip
    wait_for("chat routed", lambda: routed(control, namespace, "chat", 1), 60)
    wait_for("echo routed", lambda: routed(control, namespace, "echo", 1), 60)
    base = f"http://{keyed.address}/{namespace}/chat"
    alice = openai.OpenAI(base_url=f"{base}/v1", api_key=ALICE, max_retries=0)

    def answered() -> bool:
        try:
            reply = alice.chat.completions.create(
                model="tiny-chat", messages=MESSAGES, max_tokens=4
            )
        except openai.APIError:
            return False  # the route or its Middleware not loaded by Traefik yet
        return bool(reply.choices[0].message.content)

    wait_for("an answer with alice's key", answered, 60)
    sim = keyed.backends["sim-a"]
    before = engine_requests(sim)

    # no key at all: 401 in the OpenAI error shape, from the front door
    bare = httpx.post(f"{base}/v1/chat/completions", json={"model": "tiny-chat",
                      "messages": MESSAGES, "max_tokens": 4}, timeout=10)  # fmt: skip
    assert bare.status_code == 401, bare.text
    assert bare.json()["error"]["code"] == "invalid_api_key"
    # a wrong key, through both SDKs
    wrong = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-wrong-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=4)
    stranger = anthropic.Anthropic(base_url=base, api_key="sk-wrong-0123456789", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(
            model="tiny-chat", max_tokens=4, messages=[{"role": "user", "content": "hi"}]
        )
    # a key labelled in the kubeconfigs' namespace is no key: gateway-config cannot list there
    assert not can_list_secrets(keyed, SYSTEM_NAMESPACE)
    assert can_list_secrets(keyed, KEY_NAMESPACE)
    mallory = openai.OpenAI(base_url=f"{base}/v1", api_key=MALLORY, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        mallory.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=4)
    # bob's key is for another service: 403
    bob = openai.OpenAI(base_url=f"{base}/v1", api_key=BOB, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        bob.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=4)
    # straight to the Gateway's hop listener (sim-a is plain HTTP: reached through the hop),
    # with no key or alice's: no route takes it without the token the service route adds
    hop = f"http://{keyed.address}:{HOP_PORT}{hop_prefix(namespace, 'chat', 'sim-a')}"
    chat = {"model": "tiny-chat", "messages": MESSAGES, "max_tokens": 4}
    for headers in ({}, {"Authorization": f"Bearer {ALICE}"}, {HOP_HEADER: "0" * 32}):
        around = httpx.post(f"{hop}v1/chat/completions", json=chat, headers=headers, timeout=10)
        assert around.status_code == 404, (headers, around.text)
    assert engine_requests(sim) == before  # nothing refused reached the engine
    # the token the applied route sets opens it (so the 404s were the guard's, not the path's)
    rule = get(control, "httproute", "-n", namespace, "chat")["spec"]["rules"][0]
    (modifier,) = [f["requestHeaderModifier"] for f in rule["filters"]
                   if f["type"] == "RequestHeaderModifier"]  # fmt: skip
    (token,) = [h["value"] for h in modifier["set"] if h["name"] == HOP_HEADER]
    through = httpx.post(f"{hop}v1/chat/completions", json=chat, headers={HOP_HEADER: token},
                         timeout=10)  # fmt: skip
    assert through.status_code == 200, through.text
    assert engine_requests(sim) == before + 1
    before += 1

    # alice's key through both SDKs, streamed too
    pieces = [
        c.choices[0].delta.content or ""
        for c in alice.chat.completions.create(
            model="tiny-chat", messages=MESSAGES, max_tokens=4, stream=True
        )
        if c.choices
    ]
    assert "".join(pieces)
    claude = anthropic.Anthropic(base_url=base, api_key=ALICE, max_retries=0)
    message = claude.messages.create(
        model="tiny-chat", max_tokens=4, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content
    assert engine_requests(sim) == before + 2

    # the backend sees the key id (a client's own replaced), never the key
    def echoed() -> dict[str, str] | None:
        reply = httpx.get(
            f"http://{keyed.address}/{namespace}/echo/v1/models",
            headers={"Authorization": f"Bearer {ALICE}", "X-Modelplane-Key-Id": "mallory"},
            timeout=10,
        )
        return dict(reply.json()) if reply.status_code == 200 else None

    seen = wait_for("an answer from echo", echoed, 60)
    assert seen["x-modelplane-key-id"] == "alice"
    assert "authorization" not in seen and "x-api-key" not in seen, seen

    # the key plugin reports its counts to gateway-config every few seconds
    assert keyed.service is not None
    service = f"{namespace}/chat"

    def counted() -> list[str] | None:
        assert keyed.service is not None
        code, text = keyed.service.get("/metrics")
        assert code == 200
        lines = [
            line for line in text.splitlines()
            if line.startswith("modelplane_gateway_api_key_requests_total{")
        ]  # fmt: skip
        alice_ok = any(
            'key_id="alice"' in line and f'service="{service}"' in line
            and 'result="accepted"' in line and float(line.rsplit(" ", 1)[1]) >= 3
            for line in lines
        )  # fmt: skip
        bob_refused = any('key_id="bob"' in line and 'result="forbidden"' in line for line in lines)
        return lines if alice_ok and bob_refused else None

    wait_for("alice's and bob's counts in gateway-config's metrics", counted, 30)
    # made-up counts, without the token rendered into the plugin's Middleware: 401, not counted
    forged = [{"key_id": "forged", "service": service, "result": "accepted", "count": 1000}]
    made_up = httpx.post(f"http://{keyed.address}:{KEY_PORT}/counts", json=forged, timeout=10)
    assert made_up.status_code == 401, made_up.text
    _, metrics = keyed.service.get("/metrics")
    assert ALICE not in metrics and BOB not in metrics
    assert 'key_id="forged"' not in metrics
    assert ALICE not in (keyed.logs / "gateway-config.log").read_text()

    # revoking alice's key: refused within 5 s
    control.kubectl("delete", "secret", "-n", KEY_NAMESPACE, "alice")
    began = time.monotonic()

    def refused() -> bool:
        try:
            alice.models.list()
        except openai.AuthenticationError:
            return True
        return False

    wait_for("alice's key refused", refused, 5, every_s=0.1)
    print(f"revocation took effect after {time.monotonic() - began:.2f} s")
