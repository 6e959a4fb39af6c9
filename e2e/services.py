"""Control-plane services as e2e tests run them: one process each, with its own identity.

Each runs `python -m <module>` inside the fleet's namespace with the kubeconfig
of its own client-certificate user on the control cluster, its status endpoint
(`/metrics`, `/healthz`, `/readyz`) on the control cluster's address.

Every `Service` started is remembered (`STARTED`): `stop_leftovers` stops those still
running, so that a module whose own teardown failed half-way never leaves processes (and
their ports, and their leader leases) to the modules after it (`e2e/conftest.py` calls
it after each module).
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from modelplane_localfleet import services
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import FLEET_FILE
from e2e.kube import condition, get, wait_for


class Service:
    def __init__(
        self, fleet: Fleet, service: str, module: str, port: int, log: Path, *extra: str
    ) -> None:
        control = fleet.cluster("control")
        self.name = service
        self.status = f"http://{control.plan.address}:{port}"
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", module,
                f"--kubeconfig={control.kubeconfig_for(service)}",
                f"--status-address={control.plan.address}:{port}",
                *extra,
            ],
            stdout=log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        STARTED.append(self)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.status + path, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except OSError as error:
            return getattr(error, "code", 0), str(error)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


STARTED: list[Service] = []
"""Every Service this test process started, stopped or not."""


def stop_all(services: Iterable[Service]) -> None:
    """Stop every one of `services` and print the end of its log, each even when stopping
    or printing another failed; then raise the first failure, if any."""
    failures: list[BaseException] = []
    for service in services:
        try:
            service.stop()
        except (OSError, subprocess.SubprocessError) as error:
            failures.append(error)
        with contextlib.suppress(OSError):
            print(f"--- {service.name} ({service.log}):\n{service.log.read_text()[-4000:]}")
    if failures:
        raise failures[0]


def stop_leftovers() -> list[str]:
    """Stop every started Service still running; what they were (name, pid, status URL)."""
    left = [service for service in STARTED if service.process.poll() is None]
    STARTED.clear()
    stop_all(left)
    return [f"{s.name} (pid {s.process.pid}, {s.status})" for s in left]


def _tls_flags(fleet: Fleet, service: str) -> list[str]:
    tls = tls_dir(fleet, service)
    return [
        f"--tls-cert={tls / 'tls.crt'}",
        f"--tls-key={tls / 'tls.key'}",
        f"--tls-ca={tls / 'ca.crt'}",
    ]


def cluster_provisioner(fleet: Fleet, port: int, grpc_port: int, log: Path) -> Service:
    """cluster-provisioner, serving the Fleet API with mutual TLS on the control address."""
    address = fleet.cluster("control").plan.address
    return Service(
        fleet, "cluster-provisioner", "cluster_provisioner", port, log,
        f"--listen={address}:{grpc_port}", *_tls_flags(fleet, "cluster-provisioner"),
    )  # fmt: skip


def grpc_client(*args: str) -> dict[str, Any]:
    """Run `python -m e2e.grpc_client ARGS` (inside the namespace) and parse its answer."""
    done = subprocess.run(
        [sys.executable, "-m", "e2e.grpc_client", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def tls_dir(fleet: Fleet, name: str) -> Path:
    """The harness-issued mutual-TLS files of a service (or `modelplane-cli`)."""
    return services.tls_dir(fleet.cluster("control").config_dir, name)


def fleet_scheduler(fleet: Fleet, port: int, grpc_port: int, log: Path) -> Service:
    """fleet-scheduler in live mode, serving gRPC with mutual TLS on the control address."""
    address = fleet.cluster("control").plan.address
    return Service(
        fleet, "fleet-scheduler", "fleet_scheduler", port, log,
        f"--listen={address}:{grpc_port}", *_tls_flags(fleet, "fleet-scheduler"),
    )  # fmt: skip


def endpoint_manager(fleet: Fleet, port: int, fleet_api: str, log: Path, *extra: str) -> Service:
    """endpoint-manager, reaching inference clusters through cluster-provisioner's Fleet API
    at `fleet_api` (host:port) with its own client certificate (which also serves what
    `extra` flags such as `--scaler-address` turn on)."""
    return Service(
        fleet, "endpoint-manager", "endpoint_manager", port, log,
        f"--fleet={fleet_api}", *_tls_flags(fleet, "endpoint-manager"), *extra,
    )  # fmt: skip


def placing_and_scaling(
    fleet: Fleet, first_port: int, fleet_api_port: int, scaler: str, logs: Path
) -> dict[str, Service]:
    """cluster-provisioner (Fleet API on `fleet_api_port`), fleet-scheduler (gRPC on the next
    port) and endpoint-manager serving KEDA's external scaler and the Activation API at
    `scaler` (host:port); status ports `first_port` onwards."""
    address = fleet.cluster("control").plan.address
    return {
        "cluster-provisioner": cluster_provisioner(
            fleet, first_port, fleet_api_port, logs / "cp.log"
        ),
        "fleet-scheduler": fleet_scheduler(
            fleet, first_port + 1, fleet_api_port + 1, logs / "fs.log"
        ),
        "endpoint-manager": endpoint_manager(
            fleet, first_port + 2, f"{address}:{fleet_api_port}", logs / "em.log",
            f"--scaler-address={scaler}",
        ),
    }  # fmt: skip


def gateway_config(fleet: Fleet, port: int, log: Path, *extra: str) -> Service:
    """gateway-config: the control cluster's front-door Gateway and ModelService routes."""
    return Service(fleet, "gateway-config", "gateway_config", port, log, *extra)


def activator(fleet: Fleet, port: int, listen_port: int, log: Path, scaler: str) -> Service:
    """The activator, taking held requests on the control address at `listen_port` (give
    gateway-config `--activator-url=http://<control address>:<listen_port>`) and reporting
    them to the Activation API at `scaler` (host:port) with its own client certificate."""
    address = fleet.cluster("control").plan.address
    return Service(
        fleet, "activator", "activator", port, log, f"--listen={address}:{listen_port}",
        f"--scaler={scaler}", *_tls_flags(fleet, "activator"),
    )  # fmt: skip


def placing_and_serving(fleet: Fleet, first_port: int, logs: Path) -> dict[str, Service]:
    """cluster-provisioner, fleet-scheduler and endpoint-manager, on status ports
    `first_port` .. +2 and gRPC ports `first_port + 41000` .. +1: what turns a
    ModelDeployment into a serving replica and its ModelEndpoint."""
    fleet_api = first_port + 41000
    address = fleet.cluster("control").plan.address
    return {
        "cluster-provisioner": cluster_provisioner(fleet, first_port, fleet_api, logs / "cp.log"),
        "fleet-scheduler": fleet_scheduler(fleet, first_port + 1, fleet_api + 1, logs / "fs.log"),
        "endpoint-manager": endpoint_manager(
            fleet, first_port + 2, f"{address}:{fleet_api}", logs / "em.log"
        ),
    }


def service_ready(name: str, service: Service) -> bool:
    """Whether `service` answers /readyz with 200; fails at once, with its log, if it exited."""
    code = service.process.poll()
    if code is not None:
        raise AssertionError(f"{name} exited with {code}:\n{service.log.read_text()[-3000:]}")
    return service.get("/readyz")[0] == 200


def cluster_ready(control: Cluster, name: str) -> bool:
    return condition(get(control, "inferencecluster", name), "Ready").get("status") == "True"


@contextlib.contextmanager
def serving(
    control: Cluster,
    running: dict[str, Service],
    clusters: tuple[str, ...] = ("east", "west"),
    drain: bool = False,
    drain_s: float = 120,
) -> Iterator[dict[str, Service]]:
    """Yield `running` once every service is ready (a service that exited fails the module
    with its log) and the fleet's `clusters` are Ready; afterwards stop every service
    and print the end of its log, whatever happened before. With `drain` (endpoint-manager
    runs), every ModelDeployment is deleted first and the services keep running until no
    ModelReplica is left, so replicas' finalizers are released and their workloads torn
    down instead of holding devices for the tests that follow; a drain that does not end
    within `drain_s` names the replicas left, and the services are stopped all the same."""
    try:
        try:
            for name, service in running.items():
                # generous: a loaded machine (CI beside other fleets) starts Python slowly
                wait_for(f"{name} ready", functools.partial(service_ready, name, service), 180)
            for name in clusters:
                wait_for(f"{name} Ready", functools.partial(cluster_ready, control, name), 180)
            yield running
        finally:
            if drain:
                drain_replicas(control, drain_s)
    finally:
        stop_all(running.values())


def drain_replicas(control: Cluster, timeout_s: float) -> None:
    """Delete every ModelDeployment and ModelReplica and wait until no ModelReplica is left;
    past `timeout_s`, fail naming each replica left, its cluster and what it says."""

    def replicas() -> list[dict[str, Any]]:
        found = control.kubectl("get", "modelreplicas", "-A", "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(found)["items"]
        return items

    control.kubectl("delete", "modeldeployments", "--all", "-A", "--wait=false")
    control.kubectl("delete", "modelreplicas", "--all", "-A", "--wait=false")
    try:
        wait_for("every ModelReplica released", lambda: not replicas(), timeout_s)
    except TimeoutError as error:
        left = "\n".join(describe_replica(r) for r in replicas())
        raise TimeoutError(f"{error}; left:\n{left}") from None


def describe_replica(replica: dict[str, Any]) -> str:
    """One line for a ModelReplica: namespace/name, its cluster, its finalizers, and its
    Ready condition's reason and message."""
    meta = replica["metadata"]
    ready = condition(replica, "Ready")
    said = f"{ready.get('reason')}: {ready.get('message')}" if ready else "no Ready condition"
    return (
        f"ModelReplica {meta['namespace']}/{meta['name']} on cluster "
        f"{replica['spec'].get('clusterName')!r}, finalizers {meta.get('finalizers') or []}, "
        f"Ready {ready.get('status', '?')} ({said})"
    )


@contextlib.contextmanager
def front_door(control: Cluster) -> Iterator[None]:
    """The control cluster's InferenceGateway `default` (Traefik) while the block runs, for
    gateway-config to give ModelServices their front-door address; deleted afterwards."""
    gateway = {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceGateway",
        "metadata": {"name": "default"}, "spec": {"backend": "Traefik"},
    }  # fmt: skip
    control.kubectl("apply", "--server-side", "--field-manager=e2e", "-f", "-",
                    stdin=json.dumps(gateway))  # fmt: skip
    try:
        yield
    finally:
        control.kubectl("delete", "inferencegateway", "default", "--wait=false", check=False)


@contextlib.contextmanager
def serving_from_zero(
    fleet: Fleet, first_port: int, fleet_api_port: int, scaler: str, activator_port: int,
    logs: Path, drain_s: float = 120,
) -> Iterator[dict[str, Service]]:  # fmt: skip
    """With the fleet file applied and the front door up, every service a request to a
    ModelService at zero goes through, ready: `placing_and_scaling` (status ports
    `first_port` .. +2), gateway-config (+3) routing services at zero to the activator (+4),
    which listens on `activator_port` and reports what it holds to endpoint-manager at
    `scaler`. Afterwards every deployment is drained (`serving`, within `drain_s`) and the
    services stopped."""
    control = fleet.cluster("control")
    control.kubectl("apply", "-f", str(FLEET_FILE))
    address = control.plan.address
    running = {
        **placing_and_scaling(fleet, first_port, fleet_api_port, scaler, logs),
        "gateway-config": gateway_config(
            fleet, first_port + 3, logs / "gc.log",
            f"--activator-url=http://{address}:{activator_port}",
        ),
        "activator": activator(
            fleet, first_port + 4, activator_port, logs / "activator.log", scaler
        ),
    }  # fmt: skip
    with front_door(control), serving(control, running, drain=True, drain_s=drain_s) as ready:
        yield ready
