"""KEDA scales a ModelDeployment on endpoint-manager's own external scaler, over mutual TLS.

The session fleet with KEDA (`up --keda`, as in `e2e/test_keda.py`); cluster-provisioner,
fleet-scheduler and endpoint-manager run as their own processes, endpoint-manager with
`--scaler-address` on the control address (its harness-issued certificate names that
address). A `ScaledObject` (made through kr8s) on the documentation's qwen3-8b
ModelDeployment has one `external-push` trigger whose `scalerAddress` is that address;
its TriggerAuthentication hands KEDA the CA and a client certificate of the same CA
(`caCert`, `tlsClientCert`, `tlsClientKey` from a Secret).

- Load: long streamed completions sent straight to the serving replica's engine
  (through its cluster's gateway) raise `inFlight`; the HPA KEDA made scales 1 -> 2;
  without load it goes back to 1.
- Wake from zero: a `ReportHeld` (the activator's call, made here by a real gRPC client
  with a certificate of the fleet's CA) for the ModelService selecting the deployment
  makes KEDA scale it 0 -> 1; once the report is cleared it goes back to 0 after the
  cooldown. KEDA's own READY/ACTIVE conditions follow.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import kr8s
import pytest
import yaml
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import (
    Service,
    grpc_client,
    placing_and_scaling,
    serving,
    tls_dir,
)
from e2e.test_keda import (  # noqa: F401  (keda_fleet is a fixture)
    DEPLOYMENT,
    SEED,
    ScaledObject,
    keda_fleet,
    keda_status,
    qwen,
    replicas,
)

pytestmark = [
    pytest.mark.usefixtures("local_fleet"),
    pytest.mark.filterwarnings("ignore:Kubernetes version .* is not supported:UserWarning"),
]
FLEET_API_PORT = 50231
SCALER_PORT = 50233
TARGET_PER_REPLICA = 4
STREAMS = 2 * TARGET_PER_REPLICA  # in flight at once: two replicas' worth
KEDA_IDENTITY = "modelplane-cli"
"""Whose client certificate KEDA presents: any the fleet's CA signed is let in."""
TriggerAuthentication = kr8s.objects.new_class(
    "TriggerAuthentication", version="keda.sh/v1alpha1", namespaced=True
)


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
    control = keda_fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    running = placing_and_scaling(keda_fleet, 9171, FLEET_API_PORT, scaler_address, logs)
    with serving(control, running, drain=True) as ready:
        yield ready


def trigger_auth(fleet: Fleet, namespace: str, api: Any) -> str:
    """A Secret with the CA and a client certificate, and the TriggerAuthentication naming
    its keys as the external scaler's `caCert`, `tlsClientCert` and `tlsClientKey`."""
    files = tls_dir(fleet, KEDA_IDENTITY)
    data = {
        key: base64.b64encode((files / name).read_bytes()).decode()
        for key, name in (("ca", "ca.crt"), ("cert", "tls.crt"), ("key", "tls.key"))
    }
    secret = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "modelplane-scaler-tls", "namespace": namespace}, "data": data,
    }  # fmt: skip
    apply(fleet.cluster("control"), secret)
    refs = [
        {"parameter": parameter, "name": "modelplane-scaler-tls", "key": key}
        for parameter, key in (("caCert", "ca"), ("tlsClientCert", "cert"), ("tlsClientKey", "key"))
    ]
    manifest = {
        "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "modelplane-scaler", "namespace": namespace},
        "spec": {"secretTargetRef": refs},
    }  # fmt: skip
    TriggerAuthentication(manifest, api=api).create()
    return "modelplane-scaler"


def scaled_object(namespace: str, address: str, auth: str, min_replicas: int) -> Json:
    """KEDA's documented ScaledObject shape with one `external-push` trigger on our scaler."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "qwen", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "modelplane.ai/v1alpha1",
                "kind": "ModelDeployment",
                "name": DEPLOYMENT,
            },
            # long: what happens sooner comes from the push, not from polling
            "pollingInterval": 30,
            "cooldownPeriod": 10,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": 2,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}
                }
            },
            "triggers": [
                {
                    "type": "external-push",
                    "metadata": {
                        "scalerAddress": address,
                        "metric": "inFlight",
                        "targetPerReplica": str(TARGET_PER_REPLICA),
                    },
                    "authenticationRef": {"name": auth},
                }
            ],
        },
    }


def model_service(namespace: str) -> Json:
    """The documentation's ModelService selecting the qwen3-8b deployment."""
    manifest: Json = yaml.safe_load(
        (SEED / "examples" / "qwen3-8b" / "model-service.yaml").read_text()
    )
    manifest["metadata"]["namespace"] = namespace
    return manifest


def serving_addresses(control: Cluster, namespace: str) -> list[str]:
    """status.address of each ModelReplica of the deployment that serves."""
    return sorted(
        r["status"]["address"]
        for r in items(control, "modelreplicas", "-n", namespace)
        if condition(r, "Ready").get("status") == "True" and (r.get("status") or {}).get("address")
    )


def completion(address: str, max_tokens: int, timeout: float = 60) -> httpx.Response:
    # ignore_eos (vLLM's): exactly max_tokens tokens, not the prompt's natural length
    body = {"model": "qwen", "prompt": "count slowly", "max_tokens": max_tokens, "ignore_eos": True}
    return httpx.post(f"{address}/v1/completions", json=body, timeout=timeout, trust_env=False)


class Load:
    """`STREAMS` clients each sending one long completion after another to `address`."""

    def __init__(self, address: str) -> None:
        self.stop = threading.Event()
        self.answered = 0
        self.failed: list[str] = []
        self.threads = [
            threading.Thread(target=self.client, args=(address,)) for _ in range(STREAMS)
        ]
        for thread in self.threads:
            thread.start()

    def client(self, address: str) -> None:
        while not self.stop.is_set():
            try:
                reply = completion(address, max_tokens=2000)  # ~10 s at the engine's 5 ms/token
            except httpx.HTTPError as error:
                self.failed.append(repr(error))
                continue
            if reply.status_code == 200:
                self.answered += 1
            else:
                self.failed.append(f"{reply.status_code} {reply.text[:200]}")

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)


def scaler(target: str, fleet: Fleet, namespace: str) -> dict[str, Any]:
    """What the scaler tells KEDA about the deployment right now (GetMetrics, IsActive)."""
    return grpc_client(
        "scaler-metrics", target, str(tls_dir(fleet, KEDA_IDENTITY)), namespace, DEPLOYMENT
    )


def keda_says(control: Cluster, namespace: str, *, active: bool) -> None:
    """Wait for KEDA's own conditions on the ScaledObject: READY, and ACTIVE or not."""
    wanted = {"Ready": "True", "Active": str(active)}
    wait_for(
        f"ScaledObject {wanted}",
        lambda: keda_status(control, namespace, "qwen") == wanted,
        120,
        1,
    )


def hpa_metric(control: Cluster, namespace: str) -> str:
    hpa = get(control, "hpa", "-n", namespace, "keda-hpa-qwen")
    name: str = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]
    return name


def test_engine_load_scales_the_deployment_up_and_back_down(
    keda_fleet: Fleet,  # noqa: F811
    services: dict[str, Service],
    namespace: str,
    scaler_address: str,
) -> None:
    control = keda_fleet.cluster("control")
    deployment = qwen(namespace)
    deployment["spec"]["replicas"] = 1
    apply(control, deployment)
    first = wait_for("a serving replica", lambda: serving_addresses(control, namespace), 240, 1)[0]
    api = kr8s.api(kubeconfig=str(control.kubeconfig_path))
    auth = trigger_auth(keda_fleet, namespace, api)
    ScaledObject(scaled_object(namespace, scaler_address, auth, 1), api=api).create()
    wait_for(
        "ScaledObject READY",
        lambda: keda_status(control, namespace, "qwen")["Ready"] == "True",
        120,
        1,
    )
    # KEDA named the HPA's external metric after our metric spec, with its trigger index
    assert wait_for("KEDA's HPA", lambda: hpa_metric(control, namespace), 60, 1) == (
        f"s0-inflight-{DEPLOYMENT}"
    )
    assert scaler(scaler_address, keda_fleet, namespace) == {"inFlight": 0.0, "active": False}

    began = time.monotonic()
    load = Load(first)
    try:
        # a client between two requests for a moment: one fewer may be in flight
        asked: list[dict[str, Any]] = []

        def in_flight() -> dict[str, Any] | None:
            asked.append(scaler(scaler_address, keda_fleet, namespace))
            return asked[-1] if asked[-1]["inFlight"] >= STREAMS - 1 else None

        try:
            seen = wait_for(f"{STREAMS} requests in flight at the scaler", in_flight, 60, 1)
        except TimeoutError as error:
            raise AssertionError(
                f"scaler said {asked[-3:]}; load failed {load.failed[:3]}"
            ) from error
        assert seen["active"] is True
        wait_for("the HPA's 1 -> 2", lambda: replicas(control, namespace) == 2, 240, 1)
        keda_says(control, namespace, active=True)
        second = wait_for(
            "a second serving replica",
            lambda: [a for a in serving_addresses(control, namespace) if a != first],
            240,
            1,
        )[0]
        wait_for(
            "the new replica's first answer",
            lambda: completion(second, max_tokens=4).status_code == 200,
            60,
            0.2,
        )
        print(f"\nscale-up reaction, load step -> new replica's first answer: "
              f"{time.monotonic() - began:.1f} s")  # fmt: skip
    finally:
        load.close()
    assert load.failed == [], load.failed[:5]
    assert load.answered > 0
    wait_for("back to 1 without load", lambda: replicas(control, namespace) == 1, 240, 1)


def test_a_held_request_reported_by_the_activator_wakes_a_deployment_at_zero(
    keda_fleet: Fleet,  # noqa: F811
    services: dict[str, Service],
    namespace: str,
    scaler_address: str,
) -> None:
    control = keda_fleet.cluster("control")
    apply(control, qwen(namespace), model_service(namespace))
    api = kr8s.api(kubeconfig=str(control.kubeconfig_path))
    auth = trigger_auth(keda_fleet, namespace, api)
    ScaledObject(scaled_object(namespace, scaler_address, auth, 0), api=api).create()
    keda_says(control, namespace, active=False)
    assert replicas(control, namespace) == 0
    certificate = str(tls_dir(keda_fleet, KEDA_IDENTITY))
    service = model_service(namespace)["metadata"]["name"]

    def report(held: int) -> None:
        grpc_client("report-held", scaler_address, certificate, namespace, service, str(held))

    began = time.monotonic()
    report(1)
    last = time.monotonic()

    def woken() -> bool:
        nonlocal last
        if time.monotonic() - last > 5:  # as the activator does while it holds requests
            report(1)
            last = time.monotonic()
        return replicas(control, namespace) == 1

    wait_for("KEDA's 0 -> 1 on the held request", woken, 120, 0.5)
    print(f"\nheld request reported -> ModelDeployment at 1: {time.monotonic() - began:.1f} s")
    keda_says(control, namespace, active=True)
    assert scaler(scaler_address, keda_fleet, namespace)["active"] is True
    wait_for("a serving replica", lambda: serving_addresses(control, namespace), 240, 1)

    report(0)  # the request was answered: nothing held any more
    wait_for("back to 0 after the cooldown", lambda: replicas(control, namespace) == 0, 180, 1)
    keda_says(control, namespace, active=False)
