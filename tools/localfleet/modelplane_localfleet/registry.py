"""The fleet's image registry: `crane registry serve` on the control cluster's address.

One registry serves the whole fleet at `10.240.0.1:5000` (also named
`registry.modelplane.local:5000` in the namespace's hosts file), plain HTTP,
blobs on disk under `DIR/registry/` so pushed images survive a restart. Node
agents pull from it (`nodeagent.images`); an image reference whose registry is
one of `FLEET_REGISTRIES` is pulled and run from its own content, any other
reference goes through the runtime map (`nodeagent.runtime`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelplane_localfleet.layout import CLUSTER_RANGE
from modelplane_localfleet.probe import Probe

if TYPE_CHECKING:
    from modelplane_localfleet.cluster import Cluster, ComponentSpec

PORT = 5000
HOSTNAME = "registry.modelplane.local"
ADDRESS = f"{CLUSTER_RANGE[1]}:{PORT}"  # the control cluster's address (index 0)
FLEET_REGISTRIES = (ADDRESS, f"{HOSTNAME}:{PORT}")
COMPONENT = "registry"


def storage_dir(state: Path) -> Path:
    return state / "registry"


def serve_argv(crane: Path, state: Path) -> list[str]:
    """The registry process: blobs and manifests on disk under the state directory."""
    return [
        str(crane),
        "registry",
        "serve",
        f"--address={ADDRESS}",
        f"--disk={storage_dir(state)}",
    ]


def health_url() -> str:
    """`GET /v2/` answers 200 once the registry serves the distribution API."""
    return f"http://{ADDRESS}/v2/"


def registry_component(cluster: Cluster) -> ComponentSpec:
    """The registry as a component of the control cluster: started, probed, listed."""
    from modelplane_localfleet.cluster import ComponentSpec

    argv = serve_argv(cluster.binaries.crane, cluster.state)
    return ComponentSpec(COMPONENT, argv, Probe(health_url(), ""))
