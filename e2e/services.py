"""Control-plane services as e2e tests run them: one process each, with its own identity.

Each runs `python -m <module>` inside the fleet's namespace with the kubeconfig
of its own client-certificate user on the control cluster, its status endpoint
(`/metrics`, `/healthz`, `/readyz`) on the control cluster's address.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from modelplane_localfleet import services
from modelplane_localfleet.fleet import Fleet


class Service:
    def __init__(
        self, fleet: Fleet, service: str, module: str, port: int, log: Path, *extra: str
    ) -> None:
        control = fleet.cluster("control")
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

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.status + path, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except OSError as error:
            return getattr(error, "code", 0), str(error)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def cluster_provisioner(fleet: Fleet, port: int, log: Path) -> Service:
    return Service(fleet, "cluster-provisioner", "cluster_provisioner", port, log)


def tls_dir(fleet: Fleet, name: str) -> Path:
    """The harness-issued mutual-TLS files of a service (or `modelplane-cli`)."""
    return services.tls_dir(fleet.cluster("control").config_dir, name)


def fleet_scheduler(fleet: Fleet, port: int, grpc_port: int, log: Path) -> Service:
    """fleet-scheduler in live mode, serving gRPC with mutual TLS on the control address."""
    address = fleet.cluster("control").plan.address
    tls = tls_dir(fleet, "fleet-scheduler")
    return Service(
        fleet, "fleet-scheduler", "fleet_scheduler", port, log,
        f"--listen={address}:{grpc_port}", f"--tls-cert={tls / 'tls.crt'}",
        f"--tls-key={tls / 'tls.key'}", f"--tls-ca={tls / 'ca.crt'}",
    )  # fmt: skip
