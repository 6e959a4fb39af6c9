"""Issue 6, scenario 5: an external provider behind a ModelService, by host name over HTTPS.

The provider is an engine simulator serving HTTPS outside every cluster (an
address of the fleet's namespace that no cluster or pod uses) with a
certificate for `provider.modelplane.test` from the control cluster's CA; the
namespace's hosts file maps that name to it, as DNS would. It is registered as
a manually created ModelEndpoint `https://provider.modelplane.test:8443`, next
to a plain http simulator, in one ModelService. gateway-config runs with
`--backend-ca-configmap` naming a ConfigMap of that CA, so the control
cluster's Traefik verifies the provider's certificate against that CA and that
name (a BackendTLSPolicy per https backend); gateway-config reaches both
backends through the h2c hop into the front door's `hop` listener. Requests to
the service address,
made with the official SDKs, are answered by both backends. Two endpoints that
must not be trusted get no answer from their backend though their routes
resolve: one whose name the certificate does not carry, one whose certificate
comes from another CA.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_config.render import backend_name, hop_name
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.netns import ETC_DIR
from modelplane_localfleet.pki import CertificateAuthority

from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import Service
from e2e.simulator import Reply, call
from e2e.streams import stream_many

pytestmark = pytest.mark.usefixtures("local_fleet")
ROOT = Path(__file__).resolve().parents[1]
API = "modelplane.ai/v1alpha1"
STATUS_PORT = 9141
PORT = 8443
CA_CONFIGMAP = "external-provider-ca"
SYSTEM_NAMESPACE = "modelplane-system"
POD_NAMESPACE = "external"
# Addresses the namespace routes locally (the clusters' range) far above any cluster's.
PROVIDER = ("provider.modelplane.test", "10.240.250.10")
ALIAS = ("alias.modelplane.test", "10.240.250.10")  # the provider, by a name not on its certificate
ROGUE = ("rogue.modelplane.test", "10.240.250.12")  # a certificate from a CA nobody trusts
PLAIN_ADDRESS = "10.240.250.11"


class Backends:
    """The simulators, the control cluster, and gateway-config trusting the control CA."""

    def __init__(self, fleet: Fleet, logs: Path) -> None:
        self.control: Cluster = fleet.cluster("control")
        self.address = self.control.plan.address
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []
        self.gateway_config: Service | None = None

    def simulator(self, name: str, address: str, port: int, *tls: str) -> None:
        command = [
            sys.executable, "-m", "modelplane_enginesim", f"--host={address}", f"--port={port}",
            "--model=tiny", "--served-model-name=qwen", f"--pod-name={name}",
            f"--pod-namespace={POD_NAMESPACE}", *tls,
        ]  # fmt: skip
        log = (self.logs / f"{name}.log").open("ab")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        wait_for(f"{name} listening", functools.partial(_listening, address, port), 30)

    def tls_simulator(self, name: str, ca: CertificateAuthority, host: str, address: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        pair = ca.issue(host, now, dns_names=[host], server=True)
        cert, key = self.logs / f"{name}.crt", self.logs / f"{name}.key"
        cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        self.simulator(name, address, PORT, f"--tls-cert={cert}", f"--tls-key={key}")

    def stop(self) -> None:
        if self.gateway_config is not None:
            self.gateway_config.stop()
        for process in self.processes:
            process.kill()
            process.wait(10)


def _listening(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def hosts(fleet: Fleet, *names: tuple[str, str]) -> Iterator[None]:
    """Names in the namespace's hosts file for as long as the block runs. The file is
    rewritten in place: `ip netns exec` bind-mounted its inode over /etc/hosts for the
    processes already running (Traefik), so a replaced file would go unseen."""
    path = ETC_DIR / fleet.namespace.name / "hosts"
    before = path.read_text()
    path.write_text(before + "".join(f"{ip} {host}\n" for host, ip in names))
    try:
        yield
    finally:
        path.write_text(before)


def gateway_ready(control: Cluster) -> bool:
    found = [g for g in items(control, "inferencegateways") if g["metadata"]["name"] == "default"]
    return bool(found) and condition(found[0], "Ready").get("status") == "True"


@pytest.fixture(scope="module")
def backends(local_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    logs = tmp_path_factory.mktemp("external-provider")
    found = Backends(local_fleet, logs)
    control_ca = found.control.ca()
    rogue_ca = CertificateAuthority.create("rogue-ca", datetime.datetime.now(datetime.UTC))
    bundle = (found.control.pki_dir / "ca.crt").read_text()
    with hosts(local_fleet, PROVIDER, ALIAS, ROGUE):
        try:
            found.tls_simulator("provider", control_ca, *PROVIDER)
            found.tls_simulator("rogue", rogue_ca, *ROGUE)
            found.simulator("plain", PLAIN_ADDRESS, 8000)
            apply(
                found.control,
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": CA_CONFIGMAP, "namespace": SYSTEM_NAMESPACE},
                 "data": {"ca.crt": bundle}},
                {"apiVersion": API, "kind": "InferenceGateway", "metadata": {"name": "default"},
                 "spec": {"backend": "Traefik"}},
            )  # fmt: skip
            found.gateway_config = Service(
                local_fleet, "gateway-config", "gateway_config", STATUS_PORT,
                logs / "gateway-config.log", f"--backend-ca-configmap={CA_CONFIGMAP}",
            )  # fmt: skip
            wait_for("InferenceGateway default Ready", lambda: gateway_ready(found.control), 60)
            yield found
        finally:
            found.stop()
            found.control.kubectl(
                "delete", "inferencegateway", "default", "--wait=false", check=False
            )
            found.control.kubectl(
                "delete", "configmap", "-n", SYSTEM_NAMESPACE, CA_CONFIGMAP, check=False
            )
            if found.gateway_config is not None:
                print(found.gateway_config.log.read_text()[-4000:])


def endpoint(namespace: str, name: str, url: str, role: str) -> Json:
    return {
        "apiVersion": API,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace, "labels": {"role": role}},
        "spec": {"url": url, "rewritePath": "/"},
    }


def model_service(namespace: str, name: str, role: str) -> Json:
    return {
        "apiVersion": API,
        "kind": "ModelService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"endpoints": [{"selector": {"matchLabels": {"role": role}}}]},
    }


def routed_address(control: Cluster, namespace: str, name: str, count: int) -> str | None:
    """The ModelService's address once it is Ready and routes to `count` endpoints."""
    status = get(control, "modelservice", "-n", namespace, name).get("status") or {}
    ready = condition({"status": status}, "Ready")
    wanted = f"routes to {count} ModelEndpoint(s)"
    found = ready.get("status") == "True" and wanted in ready.get("message", "")
    return str(status["address"]) if found else None


def accepted_by_traefik(control: Cluster, namespace: str, policy: str) -> Json | None:
    found = get(control, "backendtlspolicy", "-n", namespace, policy)
    ancestors = (found.get("status") or {}).get("ancestors") or []
    accepted = ancestors and condition({"status": ancestors[0]}, "Accepted").get("status") == "True"
    return found if accepted else None


BOTH = {f"{POD_NAMESPACE}/provider", f"{POD_NAMESPACE}/plain"}


def routed_to_both(backends: Backends, namespace: str) -> str:
    """ModelService `llm` over the HTTPS provider and the plain one; its address once routed."""
    control = backends.control
    apply(
        control,
        endpoint(namespace, "provider", f"https://{PROVIDER[0]}:{PORT}", "llm"),
        endpoint(namespace, "plain", f"http://{PLAIN_ADDRESS}:8000", "llm"),
        model_service(namespace, "llm", "llm"),
    )
    address: str = wait_for(
        "llm routed to two endpoints", lambda: routed_address(control, namespace, "llm", 2)
    )
    return address


def both_answer(address: str) -> bool:
    replies = [call(f"{address}/health") for _ in range(8)]
    return all(r.status == 200 for r in replies) and {r.pod for r in replies} == BOTH


def serve_both(backends: Backends, namespace: str) -> str:
    """`routed_to_both`, then until both backends answer through the address."""
    address = routed_to_both(backends, namespace)
    wait_for("both backends to answer", functools.partial(both_answer, address), 30)
    return address


def test_the_provider_takes_its_share_of_the_service_over_verified_https(
    backends: Backends, namespace: str
) -> None:
    control = backends.control
    address = routed_to_both(backends, namespace)
    assert address == f"http://{backends.address}/{namespace}/llm"
    name = backend_name("llm", "provider")
    policy = wait_for(
        "Traefik to accept the policy", lambda: accepted_by_traefik(control, namespace, name)
    )
    assert policy["spec"]["validation"] == {
        "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": name}],
        "hostname": PROVIDER[0],
    }
    slice_ = get(control, "endpointslice", "-n", namespace, name)
    assert (slice_["addressType"], slice_["endpoints"][0]["addresses"]) == ("FQDN", [PROVIDER[0]])
    # both are reached through the h2c hop into the front door, then over their own scheme
    route = get(control, "httproute", "-n", namespace, "llm")
    refs = [r["name"] for r in route["spec"]["rules"][0]["backendRefs"]]
    assert refs == [hop_name("llm", "plain"), hop_name("llm", "provider")]
    hop_slice = get(control, "endpointslice", "-n", namespace, hop_name("llm", "provider"))
    assert hop_slice["endpoints"][0]["addresses"] == [backends.address]
    assert hop_slice["ports"][0]["appProtocol"] == "kubernetes.io/h2c"
    hop_route = get(control, "httproute", "-n", namespace, name)
    assert hop_route["spec"]["parentRefs"][0]["sectionName"] == "hop"
    assert hop_route["spec"]["rules"][0]["backendRefs"][0]["name"] == name

    wait_for("both backends to answer", functools.partial(both_answer, address), 30)
    done = subprocess.run(
        [sys.executable, "-m", "e2e.sdk_client", address, "4"],
        capture_output=True, text=True, check=False, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    answered = set()
    for kind in ("chat", "chat_stream", "messages", "messages_stream"):
        for pod, had_content, *error in seen[kind]:
            assert pod in BOTH and had_content, (kind, pod, error)
            answered.add(pod)
    assert answered == BOTH
    assert seen["metrics"] == [200, True]


def test_every_concurrent_stream_to_either_provider_through_the_hop_arrives_whole(
    backends: Backends, namespace: str
) -> None:
    """400 streams, 50 at a time, through the service address to the HTTPS and the plain
    provider: relayed HTTP/1.1 to HTTP/1.1 without the hop, several in a hundred were cut."""
    address = serve_both(backends, namespace)
    body: dict[str, object] = {
        "model": "qwen", "messages": [{"role": "user", "content": "Tell me more"}],
        "max_tokens": 8,
    }  # fmt: skip
    streams = stream_many(f"{address}/v1/chat/completions", body, 400, 50)
    assert [s for s in streams if s.status != 200 or not s.whole] == []
    assert {s.pod for s in streams} == BOTH


def test_a_certificate_without_the_name_or_from_another_ca_is_not_trusted(
    backends: Backends, namespace: str
) -> None:
    control = backends.control
    apply(
        control,
        endpoint(namespace, "alias", f"https://{ALIAS[0]}:{PORT}", "alias"),
        endpoint(namespace, "rogue", f"https://{ROGUE[0]}:{PORT}", "rogue"),
        model_service(namespace, "alias", "alias"),
        model_service(namespace, "rogue", "rogue"),
    )
    for name in ("alias", "rogue"):
        replies = untrusted(control, namespace, name)
        assert all(r.status >= 500 and r.pod == "" for r in replies), replies


def untrusted(control: Cluster, namespace: str, name: str) -> list[Reply]:
    """Replies through ModelService `name` (one endpoint, also named `name`) once its route
    resolves, Traefik accepted its BackendTLSPolicy and serves the route (no 404)."""
    address = wait_for(
        f"{name} routed", functools.partial(routed_address, control, namespace, name, 1)
    )
    policy = backend_name(name, name)
    wait_for(
        f"Traefik to accept {name}'s policy",
        functools.partial(accepted_by_traefik, control, namespace, policy),
    )
    route = get(control, "httproute", "-n", namespace, name)
    resolved = condition({"status": route["status"]["parents"][0]}, "ResolvedRefs")
    assert resolved["status"] == "True", resolved
    url = f"{address}/v1/models"
    first = wait_for(f"{name}'s route to be served", functools.partial(_not_404, url), 30)
    return [first] + [call(url) for _ in range(4)]


def _not_404(url: str) -> Reply | None:
    reply = call(url)
    return None if reply.status == 404 else reply
