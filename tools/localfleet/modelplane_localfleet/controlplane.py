"""The control plane on the local fleet as a platform team installs it: its image and chart.

Two halves, because building reaches package mirrors and installing happens inside
the fleet's network namespace, where they are out of reach:

- `prepare(state, say)` (outside the namespace) builds helm when missing and the
  image of this checkout (`tools/image`'s builder, layers cached by content) into
  an OCI layout under the state directory.
- `install(fleet, say)` (inside) pushes that image to the fleet registry, runs
  `helm upgrade --install` of `charts/modelplane` as release `modelplane` in
  `modelplane-system` with the image's digest, waits for every pod Ready, names the
  services in the namespace's hosts file (`fleet-scheduler.modelplane-system.svc`,
  ...), issues the `modelplane` CLI a client certificate from the release's CA, and
  records where the fleet-scheduler answers (`installed_control_plane`), so that
  `modelplane explain` and `exec` find it with no flags.

`publish_image(layout, say)` is the push alone, for tests that run the image.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelplane_localfleet import binaries, registry
from modelplane_localfleet.components import CRANE, HELM
from modelplane_localfleet.pki import CertificateAuthority, KeyPair
from modelplane_localfleet.services import SERVICES

if TYPE_CHECKING:
    from modelplane_localfleet.cluster import Cluster
    from modelplane_localfleet.fleet import Fleet

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "modelplane"
RELEASE = "modelplane"
NAMESPACE = "modelplane-system"
REPOSITORY = f"{registry.ADDRESS}/modelplane"
CLI_IDENTITY = "modelplane-cli"
SCHEDULER_GRPC_PORT = 50061  # values.yaml services.fleet-scheduler.grpcPort
Say = Callable[[str], None]


class InstallError(RuntimeError):
    """The chart did not install or its pods did not become Ready; the message says which."""


@dataclass(frozen=True, slots=True)
class Installed:
    """Where the installed control plane answers, as `exec` and the CLI need it."""

    release: str
    namespace: str
    fleet_scheduler: str  # host:port, the host a name in the namespace's hosts file
    tls_dir: Path  # the CLI's client certificate, key and the release CA


def image_layout(state: Path) -> Path:
    return state / "image" / "layout"


def _record(config_dir: Path) -> Path:
    return config_dir / "control-plane.json"


def installed_control_plane(config_dir: Path) -> Installed | None:
    """What `install` recorded in the control cluster's config folder, if it ran."""
    path = _record(config_dir)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Installed(
        data["release"], data["namespace"], data["fleetScheduler"], Path(data["tlsDir"])
    )


def prepare(state: Path, cache: Path, say: Say = print) -> str:
    """Build helm (when missing) and this checkout's image; the image's digest.

    Runs outside the namespace: both builds download (Go modules, Debian packages, wheels).
    """
    from modelplane_imagebuild import build

    binaries.build(HELM, cache, say=say)
    layout = image_layout(state)
    say(f"    building the control plane's image from {ROOT} (layers are cached)")
    built = build.build(ROOT, layout, build.default_cache(), build.uv_next_to_python(), say)
    return built.image.digest


def publish_image(layout: Path, cache: Path, tag: str = "local") -> str:
    """Push the OCI layout to the fleet registry; `repository@digest` as pushed."""
    from modelplane_imagebuild import build

    crane = CRANE.entry(cache) / "crane"
    return build.push(crane, layout, f"{REPOSITORY}:{tag}", insecure=True)


def helm(
    cache: Path, state: Path, control: Cluster, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the fleet's helm against the control cluster, its caches under the state folder."""
    homes = state / "helm"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(homes / "cache"),
        "HELM_CONFIG_HOME": str(homes / "config"),
        "HELM_DATA_HOME": str(homes / "data"),
    }
    command = [str(HELM.entry(cache) / "helm"), f"--kubeconfig={control.kubeconfig_path}", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def install(fleet: Fleet, say: Say = print, timeout: str = "10m") -> Installed:
    """Push the prepared image and install the chart with it; wait for every pod Ready."""
    from modelplane_localfleet.layout import CONTROL

    control = fleet.cluster(CONTROL)
    reference = publish_image(image_layout(fleet.state), fleet.cache)
    repository, _, digest = reference.partition("@")
    say(f"    pushed {reference}")
    say(f"    helm upgrade --install {RELEASE} charts/modelplane -n {NAMESPACE} (waits for Ready)")
    done = helm(
        fleet.cache, fleet.state, control,
        "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--create-namespace", "--set", f"image.repository={repository}",
        "--set", f"image.digest={digest}", "--wait", "--timeout", timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise InstallError(f"helm install of {RELEASE} failed: {done.stderr.strip()}")
    fleet.add_hosts(service_names(control))
    tls_dir = write_cli_certificate(control)
    installed = Installed(
        RELEASE, NAMESPACE, f"fleet-scheduler.{NAMESPACE}.svc:{SCHEDULER_GRPC_PORT}", tls_dir
    )
    _record(control.config_dir).write_text(
        json.dumps(
            {
                "release": installed.release,
                "namespace": installed.namespace,
                "fleetScheduler": installed.fleet_scheduler,
                "tlsDir": str(installed.tls_dir),
            }
        )
    )
    return installed


def service_names(control: Cluster) -> dict[str, str]:
    """Every DNS form of the chart's Services (`svc`, `svc.ns`, `svc.ns.svc`, and with
    `.cluster.local`) -> its ClusterIP, for the namespace's hosts file."""
    done = control.kubectl("get", "services", "-n", NAMESPACE, "-o", "json")
    names: dict[str, str] = {}
    for service in json.loads(done.stdout)["items"]:
        name = service["metadata"]["name"]
        address = service["spec"].get("clusterIP")
        if name not in SERVICES or not address or address == "None":
            continue
        for form in (f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc"):
            names[form] = address
        names[f"{name}.{NAMESPACE}.svc.cluster.local"] = address
    return names


def write_cli_certificate(control: Cluster) -> Path:
    """A client certificate for the `modelplane` CLI, signed by the release's CA (the
    Secret `<release>-ca` the chart generated); its folder."""
    done = control.kubectl("get", "secret", f"{RELEASE}-ca", "-n", NAMESPACE, "-o", "json")
    data = json.loads(done.stdout)["data"]
    ca_pair = KeyPair(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
    authority = CertificateAuthority.load(ca_pair)
    now = datetime.datetime.now(datetime.UTC)
    pair = authority.issue(CLI_IDENTITY, now, client=True)
    directory = control.config_dir / "tls" / f"{RELEASE}-cli"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca_pair.cert_pem)
    (directory / "tls.crt").write_bytes(pair.cert_pem)
    key = directory / "tls.key"
    key.touch(mode=0o600)
    key.write_bytes(pair.key_pem)
    return directory
