"""Issue 18: scale from zero without losing the first request, through the activator.

On the session fleet, with cluster-provisioner, fleet-scheduler, endpoint-manager,
gateway-config (`--activator-url`) and the activator running as their own
processes: the documentation's qwen3-8b ModelDeployment (the engine simulator
stands in for vLLM) at zero replicas on us-east, behind three ModelServices:

- `plain`, without `spec.scaleToZero`: answered 503 at once by the front door, as
  before (never held: no `X-Modelplane-Held-Seconds`);
- `short`, `scaleToZero: {holdTimeoutSeconds: 3}`: held, then 503 with
  `Retry-After` once the 3 s are over;
- `qwen`, `scaleToZero: {maxHeldRequests: 2}`: a chat and a streamed chat are
  held (the activator reports 2 held over mutual TLS to `ActivationDouble`, a
  gRPC `Activation` server standing in for endpoint-manager's scaler port), a
  third request gets 429 with `Retry-After`; then the test scales the deployment
  to 1 through its scale subresource (`kubectl scale`, standing in for KEDA) and
  both held requests are answered 200 by the new replica, the stream whole, each
  with its wait reported. The time from the ModelEndpoint's appearance to the
  held answers is printed. Once the endpoint exists the route goes straight to it:
  no activator on the path.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from gateway_config.render import hop_name
from modelplane.grpcutil import TlsFiles, start_server
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2, activation_pb2_grpc
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, get, items, wait_for
from e2e.services import (
    Service,
    activator,
    front_door,
    gateway_config,
    placing_and_serving,
    serving,
    tls_dir,
)

pytestmark = pytest.mark.usefixtures("local_fleet")
QWEN = (
    Path(__file__).resolve().parents[2] / "shared" / "seed" / "manifests" / "examples" / "qwen3-8b"
)
ACTIVATOR_PORT = 18095
SCALER_PORT = 50165
ACTIVATION = "modelplane.activation.v1.Activation"
CHAT = {"model": "qwen", "messages": [{"role": "user", "content": "wake up"}], "max_tokens": 8}
HELD = "x-modelplane-held-seconds"


class ActivationDouble(activation_pb2_grpc.ActivationServicer):
    """The scaler's `Activation` API: records every report as (activator, {service: held})."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, int]]] = []
        self.lock = threading.Lock()

    def ReportHeld(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC's name)
        held = {f"{s.namespace}/{s.service}": s.held for s in request.services}
        with self.lock:
            self.reports.append((request.activator, held))
        return activation_pb2.HeldReportAck()

    def last(self) -> dict[str, int]:
        with self.lock:
            return dict(self.reports[-1][1]) if self.reports else {}


@pytest.fixture(scope="module")
def scaler(local_fleet: Fleet) -> Iterator[ActivationDouble]:
    """The double on the control address with endpoint-manager's certificate (mutual TLS)."""
    double = ActivationDouble()
    tls = tls_dir(local_fleet, "endpoint-manager")
    server = start_server(
        f"{local_fleet.cluster('control').plan.address}:{SCALER_PORT}",
        lambda s: activation_pb2_grpc.add_ActivationServicer_to_server(double, s),
        (ACTIVATION,),
        tls=TlsFiles(tls / "tls.crt", tls / "tls.key", tls / "ca.crt"),
    )
    yield double
    server.stop(0)


@pytest.fixture(scope="module")
def services(
    local_fleet: Fleet, scaler: ActivationDouble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    logs = tmp_path_factory.mktemp("services")
    control = local_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    address = control.plan.address
    running = {
        **placing_and_serving(local_fleet, 9161, logs),
        "gateway-config": gateway_config(
            local_fleet, 9164, logs / "gc.log", f"--activator-url=http://{address}:{ACTIVATOR_PORT}"
        ),
        "activator": activator(
            local_fleet, 9165, ACTIVATOR_PORT, logs / "activator.log", f"{address}:{SCALER_PORT}"
        ),
    }
    with front_door(control), serving(control, running, drain=True) as ready:
        yield ready


def deployment(namespace: str) -> Json:
    """The documentation's qwen3-8b ModelDeployment at zero replicas, on us-east."""
    manifest: Json = yaml.safe_load((QWEN / "model-deployment.yaml").read_text())
    manifest["metadata"]["namespace"] = namespace
    manifest["spec"]["replicas"] = 0
    manifest["spec"]["clusterSelector"] = {"matchLabels": {"modelplane.ai/region": "us-east"}}
    return manifest


def model_service(namespace: str, name: str, scale_to_zero: Json | None) -> Json:
    manifest: Json = yaml.safe_load((QWEN / "model-service.yaml").read_text())
    manifest["metadata"] = {"name": name, "namespace": namespace}
    if scale_to_zero is not None:
        manifest["spec"]["scaleToZero"] = scale_to_zero
    return manifest


def address_of(control: Any, namespace: str, name: str) -> str | None:
    found = get(control, "modelservice", "-n", namespace, name)
    return (found.get("status") or {}).get("address")


def held_by_the_activator(url: str) -> bool:
    """Whether a request to `url` is held (no answer within 2 s) rather than answered at once
    (a 404 or the 503 stand-in while Traefik has not loaded the route to the activator)."""
    try:
        httpx.post(url, json=CHAT, timeout=2)
    except httpx.TimeoutException:
        return True
    return False


@pytest.fixture(scope="module")
def at_zero(
    local_fleet: Fleet, services: dict[str, Service]
) -> Iterator[tuple[str, dict[str, str]]]:
    """(namespace, {service: address}) once the front door routes `short` and `qwen` to the
    activator; the namespace goes afterwards."""
    control = local_fleet.cluster("control")
    namespace = f"act-{int(time.time()) % 100000}"
    control.kubectl("create", "namespace", namespace)
    apply(control, deployment(namespace))
    apply(
        control,
        model_service(namespace, "plain", None),
        model_service(namespace, "short", {"holdTimeoutSeconds": 3}),
        model_service(namespace, "qwen", {"maxHeldRequests": 2}),
    )
    addresses = {
        name: str(wait_for(f"{name}'s address", partial(address_of, control, namespace, name), 60))
        for name in ("plain", "short", "qwen")
    }
    url = f"{addresses['qwen']}/v1/chat/completions"
    wait_for("qwen's route to the activator", lambda: held_by_the_activator(url), 60)
    try:
        yield namespace, addresses
    finally:
        control.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_service_without_scale_to_zero_at_zero_answers_503_at_once(
    at_zero: tuple[str, dict[str, str]],
) -> None:
    _, addresses = at_zero
    reply = httpx.post(f"{addresses['plain']}/v1/chat/completions", json=CHAT, timeout=30)
    assert reply.status_code == 503
    assert HELD not in reply.headers


def test_past_the_hold_time_a_held_request_gets_503_with_retry_after(
    at_zero: tuple[str, dict[str, str]],
) -> None:
    _, addresses = at_zero
    wait_for(
        "short's route to the activator",
        lambda: HELD in httpx.post(f"{addresses['short']}/v1/models", timeout=30).headers,
        60,
    )
    reply = httpx.post(f"{addresses['short']}/v1/chat/completions", json=CHAT, timeout=30)
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "30"
    assert float(reply.headers[HELD]) >= 3.0
    error = reply.json()["error"]
    assert error["code"] == "no_endpoints"
    assert "holdTimeoutSeconds (3 s)" in error["message"]


class Held(threading.Thread):
    """One request through the front door in the background: its reply (or error) and when
    it ended."""

    def __init__(self, url: str, stream: bool) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stream = stream
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = ""
        self.error = ""
        self.ended = 0.0
        """Wall-clock time (s since the epoch) the whole answer had arrived."""
        self.start()

    def run(self) -> None:
        try:
            with httpx.stream(
                "POST", self.url, json={**CHAT, "stream": self.stream}, timeout=600
            ) as reply:
                self.status, self.headers = reply.status_code, dict(reply.headers)
                self.body = "".join(reply.iter_text())
        except httpx.HTTPError as error:
            self.error = repr(error)
        self.ended = time.time()


def published_at(log: Path, namespace: str) -> float:
    """When endpoint-manager logged publishing the namespace's ModelEndpoint (s since the
    epoch; its log lines carry milliseconds): the moment the endpoint became Ready."""
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if (
            entry.get("message") == "endpoint published"
            and f" {namespace}/" in f" {entry.get('object', '')}"
        ):
            return datetime.datetime.fromisoformat(entry["time"]).timestamp()
    raise AssertionError(f"endpoint-manager never logged publishing an endpoint in {namespace}")


def test_held_requests_are_answered_once_the_deployment_scales_to_one(
    local_fleet: Fleet,
    services: dict[str, Service],
    at_zero: tuple[str, dict[str, str]],
    scaler: ActivationDouble,
) -> None:
    control = local_fleet.cluster("control")
    namespace, addresses = at_zero
    url = f"{addresses['qwen']}/v1/chat/completions"
    wait_for("the probes' holds to end", lambda: scaler.last() == {}, 30)
    chat, stream = Held(url, stream=False), Held(url, stream=True)
    wait_for("2 held reported", lambda: scaler.last() == {f"{namespace}/qwen": 2}, 60)
    assert len({sender for sender, _ in scaler.reports}) == 1  # one activator, over mTLS
    refused = httpx.post(url, json=CHAT, timeout=30)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["error"]["code"] == "too_many_held"
    assert chat.is_alive() and stream.is_alive()

    control.kubectl("scale", "modeldeployment", "qwen3-8b", "-n", namespace, "--replicas=1")
    wait_for(
        "the ModelEndpoint",
        lambda: items(control, "modelendpoints", "-n", namespace),
        300,
    )
    chat.join(120)
    stream.join(120)
    assert (chat.status, chat.error) == (200, "")
    assert json.loads(chat.body)["choices"][0]["message"]["content"]
    assert (stream.status, stream.error) == (200, "")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.body.rstrip().endswith("data: [DONE]")
    assert stream.body.count("data: ") >= 3
    for answered in (chat, stream):
        assert float(answered.headers[HELD]) > 0
    wait_for("nothing held reported", lambda: scaler.last() == {}, 30)
    published = published_at(services["endpoint-manager"].log, namespace)
    print(
        "ModelEndpoint published -> held answers complete: "
        f"chat {chat.ended - published:.3f} s, stream {stream.ended - published:.3f} s "
        f"(held {chat.headers[HELD]} s and {stream.headers[HELD]} s)"
    )


def test_once_the_endpoint_exists_the_route_goes_straight_to_it(
    local_fleet: Fleet, at_zero: tuple[str, dict[str, str]]
) -> None:
    control = local_fleet.cluster("control")
    namespace, addresses = at_zero
    via_activator = hop_name("qwen", "modelplane-activator")

    def direct() -> bool:
        route = get(control, "httproute", "-n", namespace, "qwen")
        refs = route["spec"]["rules"][0]["backendRefs"]
        return bool(refs) and all(r["name"] != via_activator for r in refs)

    wait_for("qwen's route to the endpoint", direct, 60)
    reply = wait_for(
        "an answer straight from the endpoint",
        lambda: (
            r
            if (
                r := httpx.post(f"{addresses['qwen']}/v1/chat/completions", json=CHAT, timeout=30)
            ).is_success
            and HELD not in r.headers
            else None
        ),
        30,
    )
    assert reply.status_code == 200
