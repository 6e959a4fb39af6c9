"""gateway-config on the local fleet: the control cluster's front door routes ModelServices.

gateway-config runs as its own process and identity; the control cluster's
Traefik serves the Gateway and HTTPRoutes it writes. The backends are engine
simulators (and one path-recording HTTP server) that the test starts on the
control cluster's address, registered as manually created ModelEndpoints, the
way an external provider is. Every served request is checked for who answered
(`X-Modelplane-Pod`) and, where the backend reports it, the path it received.
"""

from __future__ import annotations

import functools
import http.server
import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_config.render import backend_name, hop_name
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import Service, gateway_config
from e2e.simulator import Reply, call

pytestmark = pytest.mark.usefixtures("local_fleet")
API = "modelplane.ai/v1alpha1"
STATUS_PORT = 9121
SIM_NAMESPACE = "gateway-config-e2e"
DEPLOYMENT = "modelplane.ai/deployment"
MANAGED = "app.kubernetes.io/managed-by=modelplane-gateway-config"
CHAT = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "hello there"}],
    "max_tokens": 4,
}


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the path it received, as a backend that is not an engine."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Modelplane-Pod", f"{SIM_NAMESPACE}/recorder")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class FrontDoor:
    """gateway-config (restartable) and the backends the tests route to."""

    def __init__(self, fleet: Fleet, logs: Path) -> None:
        self.fleet = fleet
        self.control = fleet.cluster("control")
        self.address = self.control.plan.address
        self.logs = logs
        self.service: Service | None = None
        self.backends: dict[str, str] = {}

    def start(self) -> None:
        self.service = gateway_config(self.fleet, STATUS_PORT, self.logs / "gateway-config.log")

    def reconciled(self) -> bool:
        """Whether this process finished a pass as the leader (its metrics say so)."""
        if self.service is None:
            return False
        code, text = self.service.get("/metrics")
        return code == 200 and any(
            line.startswith("modelplane_reconcile_total{")
            and 'service="gateway-config"' in line
            and 'result="ok"' in line
            and float(line.rsplit(" ", 1)[1]) >= 1
            for line in text.splitlines()
        )

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None


def simulator(address: str, port: int, name: str, logs: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "modelplane_enginesim", f"--host={address}", f"--port={port}",
            "--model=tiny", "--served-model-name=tiny-chat", f"--pod-name={name}",
            f"--pod-namespace={SIM_NAMESPACE}", f"--pod-ip={address}", "--tpot-ms=20",
        ],
        stdout=(logs / f"{name}.log").open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def healthy(url: str) -> bool:
    try:
        return call(url).status == 200
    except OSError:
        return False


def gateway_ready(control: Cluster) -> Json | None:
    found = items(control, "inferencegateways")
    default = next((g for g in found if g["metadata"]["name"] == "default"), None)
    if default is None or condition(default, "Ready").get("status") != "True":
        return None
    return default


@pytest.fixture(scope="module")
def front_door(local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    logs = tmp_path_factory.mktemp("gateway-config")
    door = FrontDoor(local_fleet, logs)
    sims = {}
    recorder = http.server.ThreadingHTTPServer((door.address, 0), Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    door.backends["recorder"] = f"http://{door.address}:{recorder.server_address[1]}"
    try:  # everything started is stopped below, whatever fails first
        for name in ("sim-a", "sim-b"):
            port = free_port(door.address)
            sims[name] = simulator(door.address, port, name, logs)
            door.backends[name] = f"http://{door.address}:{port}"
        door.start()
        for name in ("sim-a", "sim-b"):
            health = f"{door.backends[name]}/health"
            wait_for(f"{name} healthy", functools.partial(healthy, health))
        apply(
            door.control,
            {"apiVersion": API, "kind": "InferenceGateway", "metadata": {"name": "default"},
             "spec": {"backend": "Traefik"}},
        )  # fmt: skip
        wait_for("InferenceGateway default Ready", lambda: gateway_ready(door.control), 60)
        yield door
    finally:
        door.stop()
        recorder.shutdown()
        for process in sims.values():
            process.kill()
            process.wait(10)
        door.control.kubectl("delete", "inferencegateway", "default", "--wait=false", check=False)
        log = logs / "gateway-config.log"
        if log.exists():
            print(log.read_text()[-4000:])


def endpoint(namespace: str, name: str, url: str, rewrite: str = "/", **labels: str) -> Json:
    return {
        "apiVersion": API,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"url": url, "rewritePath": rewrite},
    }


def model_service(namespace: str, name: str, *selectors: dict[str, str]) -> Json:
    return {
        "apiVersion": API,
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"endpoints": [{"selector": {"matchLabels": s}} for s in selectors]},
    }


def service_status(control: Cluster, namespace: str, name: str) -> Json:
    found: Json = get(control, "modelservice", "-n", namespace, name).get("status") or {}
    return found


def routed(control: Cluster, namespace: str, name: str, count: int) -> Json | None:
    """The ModelService's status once it is Ready and routes to `count` endpoints."""
    status = service_status(control, namespace, name)
    ready = condition({"status": status}, "Ready")
    wanted = f"routes to {count} ModelEndpoint(s)"
    return status if ready.get("status") == "True" and wanted in ready.get("message", "") else None


def serving(url: str, requests: int, body: Json | None = None) -> set[str]:
    """Who answered `requests` requests, or nobody when one of them was not a 200 (a route
    Traefik has not picked up yet answers 404)."""
    replies = [call(url, body) for _ in range(requests)]
    return {r.pod for r in replies} if all(r.status == 200 for r in replies) else set()


def answered_by(url: str, requests: int, body: Json | None = None) -> set[str]:
    seen = set()
    for _ in range(requests):
        reply = call(url, body)
        assert reply.status == 200, reply
        seen.add(reply.pod)
    return seen


def managed(control: Cluster, namespace: str) -> dict[str, list[str]]:
    """Managed objects of a namespace by kind, sorted names (duplicates would show)."""
    return {
        kind: sorted(o["metadata"]["name"] for o in labelled(control, kind, namespace))
        for kind in ("httproutes", "services", "endpointslices")
    }


def expected(service: str, *endpoints: str) -> dict[str, list[str]]:
    """`managed` of a namespace holding ModelService `service` over plain-http `endpoints`:
    per endpoint its own Service and EndpointSlice, its hop's, and its hop HTTPRoute."""
    direct = [backend_name(service, e) for e in endpoints]
    both = sorted(direct + [hop_name(service, e) for e in endpoints])
    return {"httproutes": sorted([service, *direct]), "services": both, "endpointslices": both}


def labelled(control: Cluster, kind: str, namespace: str) -> list[Json]:
    return items(control, kind, "-n", namespace, "-l", MANAGED)


def chat_fleet(door: FrontDoor, namespace: str) -> None:
    """sim-a and sim-b behind ModelService `chat`; sim-a is matched by both entries."""
    apply(
        door.control,
        endpoint(
            namespace, "sim-a", door.backends["sim-a"], **{DEPLOYMENT: "chat", "tier": "gold"}
        ),
        endpoint(namespace, "sim-b", door.backends["sim-b"], **{DEPLOYMENT: "chat"}),
        model_service(namespace, "chat", {DEPLOYMENT: "chat"}, {"tier": "gold"}),
    )


def stream(url: str) -> tuple[int, str, str]:
    body = json.dumps({**CHAT, "max_tokens": 12, "stream": True}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.status, reply.headers.get("X-Modelplane-Pod", ""), reply.read().decode()


def test_the_default_gateway_has_an_address_and_another_one_is_refused(
    front_door: FrontDoor,
) -> None:
    default = get(front_door.control, "inferencegateway", "default")
    assert default["status"]["address"] == f"http://{front_door.address}"
    assert default["status"]["observedGeneration"] == default["metadata"]["generation"]
    gateway = get(front_door.control, "gateway", "-n", "modelplane-system", "modelplane-gateway")
    listeners = [(x["name"], x["port"]) for x in gateway["spec"]["listeners"]]
    assert listeners == [("http", 80), ("hop", 8001)]
    assert gateway["metadata"]["ownerReferences"][0]["name"] == "default"
    other = {"apiVersion": API, "kind": "InferenceGateway", "metadata": {"name": "other"},
             "spec": {"backend": "Traefik"}}  # fmt: skip
    refused = front_door.control.kubectl(
        "apply", "--server-side", "--field-manager=e2e", "-f", "-", stdin=json.dumps(other),
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "the InferenceGateway is a singleton and must be named default" in refused.stderr
    assert [g["metadata"]["name"] for g in items(front_door.control, "inferencegateways")] == [
        "default"
    ]


def test_a_model_service_spreads_requests_over_both_backends_with_their_path_rewrites(
    front_door: FrontDoor, namespace: str
) -> None:
    control = front_door.control
    chat_fleet(front_door, namespace)
    apply(
        control,
        endpoint(namespace, "recorder", front_door.backends["recorder"], "/base/", role="recorder"),
        model_service(namespace, "rewrite", {"role": "recorder"}),
    )
    status = wait_for("chat routed to two endpoints", lambda: routed(control, namespace, "chat", 2))
    base = f"http://{front_door.address}/{namespace}/chat"
    assert status["address"] == base
    route = get(control, "httproute", "-n", namespace, "chat")
    refs = [r["name"] for r in route["spec"]["rules"][0]["backendRefs"]]
    assert refs == [hop_name("chat", "sim-a"), hop_name("chat", "sim-b")]  # plain http: hopped

    pods = {f"{SIM_NAMESPACE}/sim-a", f"{SIM_NAMESPACE}/sim-b"}
    wait_for("both backends to answer", lambda: serving(f"{base}/health", 12) == pods, 30)
    assert answered_by(f"{base}/v1/chat/completions", 20, CHAT) == pods
    chat = call(f"{base}/v1/chat/completions", CHAT)
    assert chat.body["choices"][0]["message"]["role"] == "assistant"
    assert call(f"{base}/v1/models").body["data"][0]["id"] == "tiny-chat"

    code, pod, events = stream(f"{base}/v1/chat/completions")
    assert (code, pod in pods) == (200, True)
    assert events.count("data: ") >= 3 and events.rstrip().endswith("data: [DONE]")

    rewrite = f"http://{front_door.address}/{namespace}/rewrite"
    wait_for("the recorder route", lambda: routed(control, namespace, "rewrite", 1))

    def recorder_reply() -> Reply | None:
        reply = call(f"{rewrite}/v1/models?x=1")
        return reply if reply.status == 200 else None

    recorded = wait_for("the recorder to answer", recorder_reply, 30)
    assert recorded.body == {"path": "/base/v1/models?x=1", "host": front_door.address}


def test_a_service_selecting_nothing_answers_503_promptly_and_says_which_selector(
    front_door: FrontDoor, namespace: str
) -> None:
    control = front_door.control
    apply(control, model_service(namespace, "empty", {DEPLOYMENT: "nope"}))

    def not_ready() -> Json | None:
        status = service_status(control, namespace, "empty")
        reason = condition({"status": status}, "Ready").get("reason")
        return status if reason == "NoEndpoints" else None

    status = wait_for("the NoEndpoints condition", not_ready)
    selected = condition({"status": status}, "EndpointsSelected")
    assert selected["status"] == "False"
    assert selected["message"] == (
        f"ModelService {namespace}/empty spec.endpoints[0].selector "
        f"({DEPLOYMENT}=nope) matches no ModelEndpoint in namespace {namespace}"
    )
    url = f"{status['address']}/v1/chat/completions"
    wait_for("the route to answer 503", lambda: call(url, CHAT).status == 503, 30)
    assert call(url, CHAT, timeout_s=5).status == 503  # answered, not left to time out
    assert managed(control, namespace)["services"] == [backend_name("empty", None)]

    late = endpoint(namespace, "late", front_door.backends["sim-a"], **{DEPLOYMENT: "nope"})
    apply(control, late)
    wait_for("the late endpoint to serve", lambda: call(url, CHAT).status == 200, 30)
    wanted = expected("empty", "late")["services"]
    wait_for("the stand-in to go", lambda: managed(control, namespace)["services"] == wanted)


def test_a_malformed_endpoint_gets_a_condition_and_the_others_keep_serving(
    front_door: FrontDoor, namespace: str
) -> None:
    control = front_door.control
    chat_fleet(front_door, namespace)
    url = f"http://{front_door.address}:99999"
    apply(control, endpoint(namespace, "broken", url, **{DEPLOYMENT: "chat"}))

    def refused() -> Json | None:
        found = condition(get(control, "modelendpoint", "-n", namespace, "broken"), "Accepted")
        return found if found.get("reason") == "InvalidURL" else None

    accepted = wait_for("broken's Accepted condition", refused)
    assert accepted["status"] == "False"
    assert accepted["message"].startswith(f"ModelEndpoint {namespace}/broken spec.url '{url}': ")
    good = condition(get(control, "modelendpoint", "-n", namespace, "sim-a"), "Accepted")
    assert (good["status"], good["reason"]) == ("True", "ValidURL")
    wait_for("chat routed to two endpoints", lambda: routed(control, namespace, "chat", 2))
    base = f"http://{front_door.address}/{namespace}/chat"
    pods = {f"{SIM_NAMESPACE}/sim-a", f"{SIM_NAMESPACE}/sim-b"}
    wait_for("both backends to answer", lambda: serving(f"{base}/health", 12) == pods, 30)
    assert answered_by(f"{base}/v1/chat/completions", 12, CHAT) == pods
    assert managed(control, namespace)["services"] == expected("chat", "sim-a", "sim-b")["services"]


def test_a_restart_leaves_no_duplicates_and_prunes_what_changed_while_it_was_down(
    front_door: FrontDoor, namespace: str
) -> None:
    control = front_door.control
    chat_fleet(front_door, namespace)
    wait_for("chat routed to two endpoints", lambda: routed(control, namespace, "chat", 2))
    both = expected("chat", "sim-a", "sim-b")
    wait_for("both backends' objects", lambda: managed(control, namespace) == both)

    front_door.stop()
    control.kubectl("delete", "modelendpoint", "-n", namespace, "sim-b")
    front_door.start()
    wait_for("chat routed to one endpoint", lambda: routed(control, namespace, "chat", 1), 60)
    after = expected("chat", "sim-a")
    wait_for("sim-b's objects pruned", lambda: managed(control, namespace) == after)
    base = f"http://{front_door.address}/{namespace}/chat"
    only_a = {f"{SIM_NAMESPACE}/sim-a"}
    wait_for("only sim-a to answer", lambda: serving(f"{base}/health", 8) == only_a, 30)

    uids = {s["metadata"]["uid"] for s in labelled(control, "services", namespace)}
    front_door.stop()
    front_door.start()
    wait_for("a full pass as the leader", front_door.reconciled, 60)
    assert managed(control, namespace) == after
    assert {s["metadata"]["uid"] for s in labelled(control, "services", namespace)} == uids
    assert answered_by(f"{base}/v1/chat/completions", 6, CHAT) == only_a
