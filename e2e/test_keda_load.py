"""Issue 18's load scenario: 20 requests a second take a deployment at zero to 3 replicas
across clusters and, once they stop, back to 0, with no failed request.

All real, as in `e2e/test_scale_from_zero.py`: the session fleet with KEDA (`up --keda`),
cluster-provisioner, fleet-scheduler, endpoint-manager serving KEDA's external scaler,
gateway-config routing a service at zero to the activator, the activator, Traefik's
front door, and the real kube-controller-manager's HPA. The documentation's qwen3-8b
ModelDeployment starts at 0 with no cluster selector (the scheduler spreads its replicas
over east and west before packing), its ModelService holds requests at zero
(`spec.scaleToZero`), and a ScaledObject (kr8s) has `minReplicaCount: 0`,
`maxReplicaCount: 3` and one `external-push` trigger on endpoint-manager's scaler
(`inFlight`, `TARGET_PER_REPLICA` each).

Each request asks the engine simulator for exactly `TOKENS` tokens, about 1.3 s at its
pace (20 ms to the first token, 5 ms a token, set in the pod's env), so 20 a second keep
about 26 in flight: 3 replicas at 9 each (2 hold 18). The load (`e2e.sdk_load`, the `openai` SDK,
open loop, every tenth request streamed) starts while the deployment is at zero: the
first requests are held by the activator and wake KEDA (0 -> 1), the HPA takes it to 3,
the replicas land on both clusters and each answers; once the load stops KEDA takes the
deployment back to 0 after its cooldown. Every request must be answered 200 and whole.
Printed: load start -> 2 and 3 Ready replicas, load stop -> 0, latency p50/p99, count.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kr8s
import pytest
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.kube import Json, apply, condition, get, items, wait_for
from e2e.services import Service, serving_from_zero
from e2e.test_activator import held_by_the_activator
from e2e.test_keda import (  # noqa: F401  (keda_fleet is a fixture)
    DEPLOYMENT,
    ScaledObject,
    keda_fleet,
    keda_status,
    qwen,
    replicas,
)
from e2e.test_keda_scaler import model_service, scaled_object, scaler, trigger_auth
from e2e.test_scale_from_zero import front_door_address

pytestmark = [
    pytest.mark.usefixtures("local_fleet"),
    pytest.mark.filterwarnings("ignore:Kubernetes version .* is not supported:UserWarning"),
]
ROOT = Path(__file__).resolve().parents[1]
FLEET_API_PORT = 50261
SCALER_PORT = 50263
ACTIVATOR_PORT = 18099
RATE = 20
"""Requests a second."""
TOKENS = 256
"""Tokens per answer: 20 ms + 256 x 5 ms = 1.3 s at the simulator pace set below."""
TARGET_PER_REPLICA = 9
"""20/s x 1.3 s = 26 in flight: ceil(26 / 9) = 3 replicas (2 would hold only 18)."""
MAX_REPLICAS = 3
COOLDOWN_S = 15
SERVED_AFTER_S = 30
"""How long the load goes on once all replicas are Ready: each answers some, and the scaler
is read a few times at the steady load (the burst held while waking is long answered)."""


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
        keda_fleet, 9201, FLEET_API_PORT, scaler_address, ACTIVATOR_PORT, logs, drain_s=240
    ) as ready:
        yield ready


def spread_deployment(namespace: str) -> Json:
    """qwen3-8b at 0 on any cluster of the fleet, the simulator's pace spelled out."""
    manifest = qwen(namespace)
    del manifest["spec"]["clusterSelector"]
    engine = manifest["spec"]["engines"][0]["members"][0]["template"]["spec"]["containers"][0]
    engine["env"] = [
        {"name": "ENGINESIM_TTFT_MS", "value": "20"},
        {"name": "ENGINESIM_TPOT_MS", "value": "5"},
    ]
    return manifest


def load_scaled_object(namespace: str, address: str, auth: str) -> Json:
    """0..3 on `inFlight` at `TARGET_PER_REPLICA`; a short cooldown and polling interval; the
    HPA scales up at once and down only after 30 s below target (no flapping under load)."""
    manifest = scaled_object(namespace, address, auth, 0)
    spec = manifest["spec"]
    spec.update(maxReplicaCount=MAX_REPLICAS, pollingInterval=5, cooldownPeriod=COOLDOWN_S)
    spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] = {
        "scaleUp": {"stabilizationWindowSeconds": 0},
        "scaleDown": {"stabilizationWindowSeconds": 30},
    }
    spec["triggers"][0]["metadata"]["targetPerReplica"] = str(TARGET_PER_REPLICA)
    return manifest


def ready_replicas(control: Cluster, namespace: str) -> dict[str, str]:
    """Ready ModelReplica name -> its cluster."""
    return {
        r["metadata"]["name"]: r["spec"]["clusterName"]
        for r in items(control, "modelreplicas", "-n", namespace)
        if condition(r, "Ready").get("status") == "True"
    }


class Load:
    """`e2e.sdk_load` in a child process (inside the fleet's namespace, as this one is)."""

    def __init__(self, address: str, work: Path) -> None:
        self.stop_file = work / "stop-load"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "e2e.sdk_load", address, str(self.stop_file), str(RATE),
             f"--max-tokens={TOKENS}", "--exact", "--stream-every=10", "--timeout=300"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        first = self.process.stdout.readline().strip()
        assert first == "sending", f"the load did not start: {first!r}"
        self.began = time.monotonic()

    def stop(self) -> dict[str, Any]:
        """Stop sending, wait for every answer, and return the load's outcome."""
        self.stop_file.touch()
        out, err = self.process.communicate(timeout=400)
        assert self.process.returncode == 0, err[-3000:]
        outcome: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return outcome

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)


class Watch:
    """The deployment as the load goes on: when its Ready replicas first reached each count,
    and the largest scale it was given."""

    def __init__(self, control: Cluster, namespace: str, began: float) -> None:
        self.control, self.namespace, self.began = control, namespace, began
        self.reached: dict[int, float] = {}
        self.largest = 0
        self.ready: dict[str, str] = {}

    def look(self) -> dict[str, str]:
        self.largest = max(self.largest, replicas(self.control, self.namespace))
        self.ready = ready_replicas(self.control, self.namespace)
        for count in range(1, len(self.ready) + 1):
            self.reached.setdefault(count, time.monotonic() - self.began)
        return self.ready

    def until(self, count: int, timeout: float) -> None:
        try:
            wait_for(f"{count} Ready replicas", lambda: len(self.look()) >= count, timeout, 1)
        except TimeoutError as error:
            raise AssertionError(
                f"{error}: Ready {self.ready}, scale {replicas(self.control, self.namespace)}, "
                f"HPA {hpa_status(self.control, self.namespace)}"
            ) from None


def hpa_status(control: Cluster, namespace: str) -> Json:
    found: Json = get(control, "hpa", "-n", namespace, "keda-hpa-qwen").get("status") or {}
    return found


def answered_by(pods: dict[str, int], replica: str) -> int:
    """Answers given by the pods of `replica` (`<namespace>/<workload of replica>-...`)."""
    return sum(n for pod, n in pods.items() if pod.split("/")[-1].startswith(f"{replica}-"))


def test_twenty_requests_a_second_scale_to_three_across_clusters_and_back_to_zero(
    keda_fleet: Fleet,  # noqa: F811
    services: dict[str, Service],
    namespace: str,
    scaler_address: str,
    tmp_path: Path,
) -> None:
    control = keda_fleet.cluster("control")
    service = model_service(namespace)
    service["spec"]["scaleToZero"] = {"holdTimeoutSeconds": 300, "maxHeldRequests": 5000}
    apply(control, spread_deployment(namespace), service)
    name = service["metadata"]["name"]
    door = wait_for(
        "the service's address", lambda: front_door_address(control, namespace, name), 120, 1
    )
    # Traefik routes the service to the activator before the load starts (a 404 because
    # Traefik has not loaded the route yet is not what this test is about); the probe is
    # held, then dropped, before there is a ScaledObject to wake
    url = f"{door}/v1/chat/completions"
    wait_for("the route to the activator", lambda: held_by_the_activator(url), 120, 1)
    wait_for(
        "nothing held or in flight at the scaler",
        lambda: scaler(scaler_address, keda_fleet, namespace) == {"inFlight": 0, "active": False},
        60,
        1,
    )
    api = kr8s.api(kubeconfig=str(control.kubeconfig_path))
    auth = trigger_auth(keda_fleet, namespace, api)
    ScaledObject(load_scaled_object(namespace, scaler_address, auth), api=api).create()
    wait_for(
        "ScaledObject READY, not ACTIVE",
        lambda: keda_status(control, namespace, "qwen") == {"Ready": "True", "Active": "False"},
        120,
        1,
    )
    assert replicas(control, namespace) == 0

    load = Load(str(door), tmp_path)
    try:
        watch = Watch(control, namespace, load.began)
        watch.until(MAX_REPLICAS, 420)
        spread = dict(watch.ready)
        served_until = time.monotonic() + SERVED_AFTER_S
        readings: list[float] = []  # what the scaler tells KEDA: the deployment's inFlight
        while time.monotonic() < served_until:
            watch.look()
            readings.append(scaler(scaler_address, keda_fleet, namespace)["inFlight"])
            time.sleep(1)
        deployment = get(control, "modeldeployment", "-n", namespace, DEPLOYMENT)
        keda = keda_status(control, namespace, "qwen")
        outcome = load.stop()
    finally:
        load.kill()
    stopped = time.monotonic()
    print(f"\nload: {json.dumps(outcome)}")

    assert outcome["failed"] == [], outcome["failed"][:10]
    assert outcome["answered"] == outcome["sent"], outcome
    assert watch.largest == MAX_REPLICAS, f"scaled to {watch.largest}"
    assert deployment["spec"]["replicas"] == MAX_REPLICAS, deployment["spec"]
    assert deployment["status"].get("readyReplicas") == MAX_REPLICAS, deployment["status"]
    assert keda == {"Ready": "True", "Active": "True"}, keda
    # the steady load alone, not the burst held while waking, needs all three replicas
    steady = statistics.median(readings)
    assert steady > 2 * TARGET_PER_REPLICA, f"inFlight read at the scaler: {readings}"
    assert set(spread.values()) == {"east", "west"}, f"replicas on {spread}"
    silent = [name for name in spread if not answered_by(outcome["pods"], name)]
    assert not silent, f"{silent} answered nothing; answers by pod: {outcome['pods']}"

    wait_for("KEDA's scale back to 0", lambda: replicas(control, namespace) == 0, 300, 1)
    at_zero = time.monotonic() - stopped
    wait_for(
        "every ModelReplica gone",
        lambda: not items(control, "modelreplicas", "-n", namespace),
        240,
        1,
    )
    gone = time.monotonic() - stopped
    wait_for(
        "ScaledObject not ACTIVE",
        lambda: keda_status(control, namespace, "qwen")["Active"] == "False",
        120,
        1,
    )
    latency = outcome["latency_s"]
    print(
        f"load start -> Ready replicas: 1 at {watch.reached[1]:.1f} s, 2 at "
        f"{watch.reached[2]:.1f} s, 3 at {watch.reached[3]:.1f} s ({spread}); load stop "
        f"-> scale 0 {at_zero:.1f} s, -> no ModelReplica {gone:.1f} s; {outcome['sent']} "
        f"requests, latency p50 {latency['p50']:.2f} s, p99 {latency['p99']:.2f} s, "
        f"max {latency['max']:.2f} s; sent at {outcome['sent'] / outcome['seconds']:.1f}/s; "
        f"inFlight at the scaler once served: median {steady:.0f} (min {min(readings):.0f}, "
        f"max {max(readings):.0f}, {len(readings)} readings)"
    )
