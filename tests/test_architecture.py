"""Import contracts that keep the architecture honest.

- Pure decision code imports no Kubernetes client, gRPC, asyncio, os, time,
  randomness or subprocesses.
- No service imports another service's code; services share only `modelplane`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "modelplane"

PURE = [
    LIB / "scheduling",
    LIB / "cel",
    LIB / "quantity.py",
    LIB / "semver.py",
    LIB / "naming.py",
    LIB / "conditions.py",
    LIB / "wellknown.py",
    ROOT / "services" / "cluster-provisioner" / "cluster_provisioner" / "status.py",
    ROOT / "services" / "cluster-provisioner" / "cluster_provisioner" / "extension.py",
    ROOT / "services" / "endpoint-manager" / "endpoint_manager" / "schedulername.py",
    LIB / "leases.py",
    ROOT / "services" / "fleet-scheduler" / "fleet_scheduler" / "reconcile.py",
    ROOT / "services" / "endpoint-manager" / "endpoint_manager" / "replica.py",
    ROOT / "services" / "endpoint-manager" / "endpoint_manager" / "decide.py",
    ROOT / "services" / "endpoint-manager" / "endpoint_manager" / "workload.py",
    ROOT / "services" / "endpoint-manager" / "endpoint_manager" / "cachegate.py",
    ROOT / "services" / "cache-hydrator" / "cache_hydrator" / "decide.py",
    ROOT / "services" / "cache-hydrator" / "cache_hydrator" / "render.py",
    ROOT / "services" / "cache-hydrator" / "cache_hydrator" / "remote.py",
    ROOT / "services" / "scheduler-extender" / "scheduler_extender" / "inventory.py",
    LIB / "devices.py",
    LIB / "endpoints.py",
    ROOT / "services" / "gateway-config" / "gateway_config" / "activation.py",
    *(
        ROOT / "services" / "activator" / "activator" / f"{name}.py"
        for name in ("catalog", "answers")
    ),
    *(
        ROOT / "services" / "gateway-config" / "gateway_config" / f"{name}.py"
        for name in ("backends", "decide", "render", "status")
    ),
    *(
        ROOT / "services" / "pd-router" / "pd_router" / f"{name}.py"
        for name in ("prompt", "scan", "body", "affinity", "leastload", "pods")
    ),
    *(
        ROOT / "tools" / "localfleet" / "modelplane_localfleet" / "nodeagent" / f"{name}.py"
        for name in ("config", "objects", "env", "runtime", "podstatus")
    ),
]
FORBIDDEN_IN_PURE = {
    "kubernetes",
    "kr8s",
    "grpc",
    "grpc_health",
    "asyncio",
    "os",
    "time",
    "random",
    "subprocess",
    "socket",
    "threading",
    "requests",
    "httpx",
    "modelplane.proto",
    "modelplane.grpcutil",
}


def _python_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _violations(imports: set[str], forbidden: set[str]) -> list[str]:
    return sorted(
        name
        for name in imports
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    )


PURE_FILES = [f for p in PURE for f in _python_files(p)]


@pytest.mark.parametrize("path", PURE_FILES, ids=[str(p.relative_to(ROOT)) for p in PURE_FILES])
def test_pure_code_does_no_io(path: Path) -> None:
    assert _violations(_imports(path), FORBIDDEN_IN_PURE) == []


def test_the_pure_contract_covers_real_files() -> None:
    assert len(PURE_FILES) >= 8


SERVICES = sorted(p for p in (ROOT / "services").iterdir() if p.is_dir())
SERVICE_PACKAGES = {
    svc.name: {d.name for d in svc.iterdir() if (d / "__init__.py").exists()} for svc in SERVICES
}


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_no_service_imports_another_services_code(service: Path) -> None:
    others = {
        pkg for name, pkgs in SERVICE_PACKAGES.items() if name != service.name for pkg in pkgs
    }
    bad = {
        str(f.relative_to(ROOT)): _violations(_imports(f), others) for f in _python_files(service)
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_shared_library_imports_no_service() -> None:
    services = {pkg for pkgs in SERVICE_PACKAGES.values() for pkg in pkgs}
    bad = {str(f.relative_to(ROOT)): _violations(_imports(f), services) for f in _python_files(LIB)}
    assert {k: v for k, v in bad.items() if v} == {}
