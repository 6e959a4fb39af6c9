"""Issue 19: the front door over HTTPS, on the local fleet's control Traefik.

The InferenceGateway `default` names a kubernetes.io/tls Secret holding a
certificate for the control cluster's address from the control cluster's CA
(the harness CA). gateway-config adds the Gateway's `https` listener (port 443,
the control Traefik's `websecure` entrypoint) with it, moves every ModelService
route there and answers plain HTTP with a 301 to HTTPS; the addresses in
status say `https://`. The `openai` SDK trusting the harness CA gets answers,
plain and streamed; a client trusting only the system's CAs refuses the
certificate. Taking the certificate away returns the gateway to plain HTTP.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import ssl
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from e2e.kube import Json, apply, get, wait_for
from e2e.test_gateway_config import (
    API,
    DEPLOYMENT,
    SIM_NAMESPACE,
    FrontDoor,
    endpoint,
    front_door,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
__all__ = ["front_door"]  # the fixture, imported so this module can use it
SYSTEM_NAMESPACE = "modelplane-system"
SECRET = "front-door-tls"
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "hello"}
]


def gateway(tls: bool) -> Json:
    spec: Json = {"backend": "Traefik"}
    if tls:
        spec["tls"] = {"secretName": SECRET}
    return {"apiVersion": API, "kind": "InferenceGateway", "metadata": {"name": "default"},
            "spec": spec}  # fmt: skip


@pytest.fixture
def https(front_door: FrontDoor, tmp_path: Path) -> Iterator[Path]:
    """The certificate Secret and the InferenceGateway naming it; the harness CA's file."""
    control = front_door.control
    pair = control.ca().issue(
        front_door.address, datetime.datetime.now(datetime.UTC),
        ips=[front_door.address], server=True,
    )  # fmt: skip
    data = {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem}
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": SECRET, "namespace": SYSTEM_NAMESPACE},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }  # fmt: skip
    apply(control, secret, gateway(tls=True))
    try:
        yield control.pki_dir / "ca.crt"
    finally:
        apply(control, gateway(tls=False))
        control.kubectl("delete", "secret", "-n", SYSTEM_NAMESPACE, SECRET, check=False)


def status_address(front_door: FrontDoor, *what: str) -> str:
    return str((get(front_door.control, *what).get("status") or {}).get("address") or "")


def test_the_openai_sdk_trusting_the_harness_ca_is_served_over_https(
    front_door: FrontDoor, https: Path, namespace: str
) -> None:
    control = front_door.control
    labels = {DEPLOYMENT: "tls"}
    apply(
        control,
        endpoint(namespace, "sim-a", front_door.backends["sim-a"], **labels),
        {"apiVersion": API, "kind": "ModelService",
         "metadata": {"name": "chat", "namespace": namespace},
         "spec": {"endpoints": [{"selector": {"matchLabels": labels}}]}},
    )  # fmt: skip
    base = f"https://{front_door.address}"
    wait_for(
        "the gateway's address to say https",
        lambda: status_address(front_door, "inferencegateway", "default") == base,
        60,
    )
    address = f"{base}/{namespace}/chat"
    wait_for(
        "the service's address to say https",
        lambda: status_address(front_door, "modelservice", "-n", namespace, "chat") == address,
        60,
    )
    client = openai.OpenAI(
        base_url=f"{address}/v1",
        api_key="none",
        http_client=openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=https)),
    )

    def answered() -> bool:
        try:
            reply = client.chat.completions.create(
                model="tiny-chat", messages=MESSAGES, max_tokens=4
            )
        except openai.APIError:
            return False  # the https listener not programmed yet
        return bool(reply.choices[0].message.content)

    wait_for("an answer over https", answered, 60)
    raw = client.chat.completions.with_raw_response.create(
        model="tiny-chat", messages=MESSAGES, max_tokens=4, stream=True
    )
    assert raw.headers["x-modelplane-pod"] == f"{SIM_NAMESPACE}/sim-a"
    pieces = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
    assert len(pieces) > 1 and "".join(pieces)

    # a client trusting only the system's CAs refuses the harness CA's certificate
    stranger = openai.OpenAI(base_url=f"{address}/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        stranger.models.list()

    # plain HTTP is redirected to the same path over HTTPS
    plain = http.client.HTTPConnection(front_door.address, 80, timeout=10)
    plain.request("GET", f"/{namespace}/chat/v1/models?x=1")
    reply = plain.getresponse()
    assert (reply.status, reply.getheader("location")) == (
        301,
        f"{address}/v1/models?x=1",
    )


def test_without_the_certificate_the_gateway_serves_plain_http_again(
    front_door: FrontDoor,
) -> None:
    # (runs after the test above, whose fixture took the certificate away)
    wait_for(
        "the gateway's address to say http",
        lambda: status_address(front_door, "inferencegateway", "default")
        == f"http://{front_door.address}",
        60,
    )
    listeners = get(front_door.control, "gateway", "-n", SYSTEM_NAMESPACE, "modelplane-gateway")
    assert [x["name"] for x in listeners["spec"]["listeners"]] == ["http", "hop"]
