"""Session fixtures for end-to-end tests: one fleet per test session, a namespace per test.

`--backend local` (default) brings up the local fleet of `e2e/fleet.yaml` with
`modelplane-localfleet up` (its model hub serving an empty folder that tests fill:
`modelplane_localfleet.hub.configured_root`) and moves this test process into the fleet's network
namespace, so every client the tests start runs there; `--backend kind` makes
kind clusters instead (needs Docker; see `backends`). A failed `up` fails the
session; it never skips it. At the end the fleet goes `down`, and the session
checks nothing is left behind: no process, no network namespace, no mount.

After each module, any control-plane service it started (`e2e.services.Service`) that is
still running is stopped, and the module fails naming it: one module's services must never
act on the next module's objects.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet

from e2e.backends import (
    FLEET_FILE,
    ClusterHandle,
    fleet_cluster_names,
    harness,
    kind_clusters,
    leftovers,
)
from e2e.services import stop_leftovers

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("local", "kind"),
        default="local",
        help="where e2e clusters run: the local fleet (default) or kind (needs Docker)",
    )


@pytest.fixture(scope="module", autouse=True)
def no_service_outlives_its_module() -> Iterator[None]:
    """Torn down after the module's own fixtures: stop what they left running, and say so."""
    yield
    left = stop_leftovers()
    assert not left, f"the module left control-plane services running (now stopped): {left}"


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.config.getoption("--backend")
    return value


@pytest.fixture(scope="session")
def local_fleet(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The running local fleet (local backend only)."""
    if backend != "local":
        pytest.skip("needs the local fleet's harness (--backend local)")
    if os.geteuid() != 0:
        pytest.fail("the local fleet needs root to create its network namespace")
    state = tmp_path_factory.mktemp("fleet")
    hub_root = tmp_path_factory.mktemp("hub")  # the fleet's model hub serves what tests write
    up = harness("up", "-f", str(FLEET_FILE), "--state", str(state), "--hub-root", str(hub_root))
    if up.returncode != 0:
        harness("down", "--state", str(state))
        pytest.fail(f"modelplane-localfleet up failed:\n{up.stdout}\n{up.stderr}")
    print(up.stdout)
    fleet = Fleet(state)
    fleet.namespace.enter()
    try:
        yield fleet
    finally:
        fleet.namespace.leave()
        down = harness("down", "--state", str(state))
        assert down.returncode == 0, down.stderr
        left = leftovers(fleet)
        assert not left, f"down left behind: {left}"


@pytest.fixture(scope="session")
def clusters(backend: str, request: pytest.FixtureRequest) -> Iterator[dict[str, ClusterHandle]]:
    """Every cluster of the e2e fleet by name, on the chosen backend."""
    if backend == "kind":
        handles = kind_clusters(fleet_cluster_names())
        try:
            yield {h.name: h for h in handles}
        finally:
            for handle in handles:
                handle.cluster.delete()  # type: ignore[attr-defined]
        return
    fleet: Fleet = request.getfixturevalue("local_fleet")
    yield {c.name: c for c in fleet.clusters()}


@pytest.fixture(scope="session")
def control(clusters: dict[str, ClusterHandle]) -> ClusterHandle:
    return clusters["control"]


@pytest.fixture
def namespace(control: ClusterHandle, request: pytest.FixtureRequest) -> Iterator[str]:
    """A Kubernetes namespace of the control cluster for this test alone."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]
    name = f"e2e-{digest}"
    control.kubectl("create", "namespace", name)
    yield name
    control.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def east(local_fleet: Fleet) -> Cluster:
    """The inference cluster `east` (local backend: its nodes are the node agent's)."""
    return local_fleet.cluster("east")


@pytest.fixture
def east_namespace(east: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace on `east` for this test alone; deleted, and waited for, afterwards,
    so the devices its pods claimed are free again for the next test."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]
    name = f"e2e-{digest}"
    east.kubectl("create", "namespace", name)
    yield name
    east.kubectl("delete", "namespace", name, "--wait=true", "--timeout=90s", check=False)
