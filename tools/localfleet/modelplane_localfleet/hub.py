"""The fleet's model hub: `modelplane-hubsim` serving a folder on the control cluster's address.

`up --hub-root DIR` records DIR in `config/control/hub.json`; from then on the control
cluster runs the Hugging Face hub test double (`tools/hubsim`) on `10.240.0.1:5080`,
also named `hub.modelplane.local:5080` in the namespace's hosts file, so a pod of any
cluster (a hydration Job with `HF_ENDPOINT=http://10.240.0.1:5080`) and any client
inside the namespace (`exec`) reach it. Repositories are folders of DIR
(`<org>/<name>/<revision>/...`, gating in `<org>/<name>/.hub.json`: see
tools/hubsim/README.md), read at each request, so files added while it runs are
served. An `up` without `--hub-root` keeps what an earlier one recorded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from modelplane_localfleet.layout import CLUSTER_RANGE
from modelplane_localfleet.probe import Probe

if TYPE_CHECKING:
    from modelplane_localfleet.cluster import Cluster, ComponentSpec

PORT = 5080
HOSTNAME = "hub.modelplane.local"
HOST = str(CLUSTER_RANGE[1])  # the control cluster's address (index 0)
ENDPOINT = f"http://{HOST}:{PORT}"
COMPONENT = "hub"


def _record(config_dir: Path) -> Path:
    return config_dir / "hub.json"


def configure(config_dir: Path, root: Path) -> None:
    """Serve `root` from the next start of the control cluster on."""
    if not root.is_dir():
        raise ValueError(f"--hub-root {root}: not a folder")
    config_dir.mkdir(parents=True, exist_ok=True)
    _record(config_dir).write_text(json.dumps({"root": str(root.resolve())}) + "\n")


def configured_root(config_dir: Path) -> Path | None:
    """The folder the hub serves, or None when no `up` asked for a hub."""
    path = _record(config_dir)
    return Path(json.loads(path.read_text())["root"]) if path.exists() else None


def hub_component(cluster: Cluster) -> ComponentSpec | None:
    """The hub as a component of the control cluster, when one was asked for."""
    from modelplane_localfleet.cluster import ComponentSpec

    root = configured_root(cluster.config_dir)
    if root is None:
        return None
    argv = [
        sys.executable, "-m", "modelplane_hubsim", f"--root={root}", f"--host={HOST}",
        f"--port={PORT}",
    ]  # fmt: skip
    return ComponentSpec(COMPONENT, argv, Probe(f"{ENDPOINT}/_hubsim/stats", "bytesSent"))
