"""What the ModelCache e2e tests share: cache-hydrator as its own process, a gated
repository written into the session fleet's hub, its token Secret and its commit.

The hydration Jobs run `modelplane/modelplane` (the node agent runs its console scripts
from this checkout's environment) against the fleet's hub, so a hydration here is a
real download of the bytes the test wrote.
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from modelplane_hubsim import seed
from modelplane_localfleet import hub
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.layout import CONTROL

from e2e.kube import Json, items, wait_for
from e2e.services import Service, tls_dir

HYDRATE_IMAGE = "modelplane/modelplane:e2e"
HUB = f"http://{hub.HOSTNAME}:{hub.PORT}"


def cache_hydrator(fleet: Fleet, port: int, fleet_api: str, log: Path) -> Service:
    """cache-hydrator, its Jobs downloading from the fleet's hub."""
    tls = tls_dir(fleet, "cache-hydrator")
    return Service(
        fleet, "cache-hydrator", "cache_hydrator", port, log,
        f"--fleet={fleet_api}", f"--tls-cert={tls / 'tls.crt'}",
        f"--tls-key={tls / 'tls.key'}", f"--tls-ca={tls / 'ca.crt'}",
        f"--hydrate-image={HYDRATE_IMAGE}", f"--hub={HUB}",
    )  # fmt: skip


def gated_repository(
    fleet: Fleet,
    repo: str,
    token: str,
    seed_value: int,
    shards: int = 2,
    throttle_mib_s: float | None = None,
) -> dict[str, bytes]:
    """A small synthetic model (config.json, `shards` safetensors shards of 1 MiB) as the
    gated `repo` of the fleet's hub, readable with `token` only, its bodies served at
    `throttle_mib_s` at most when given (the hub double's per-repository pace); its files
    by path."""
    root = hub.configured_root(fleet.cluster(CONTROL).config_dir)
    assert root is not None, "the session fleet runs without a hub"
    files = seed.synthetic_model(shards=shards, shard_bytes=1 << 20, seed=seed_value)
    seed.write_revision(root, repo, "main", files)
    seed.configure(root, repo, gated=True, tokens=(token,), throttle_mib_s=throttle_mib_s)
    return files


def hub_bytes_served(repo: str) -> int:
    """The bytes of file bodies the fleet's hub has sent for `repo` since it started (the
    hub double's own count, `/_hubsim/stats`)."""
    with urllib.request.urlopen(f"{hub.ENDPOINT}/_hubsim/stats", timeout=10) as answer:
        served: int = json.load(answer)["bytesByRepo"].get(repo, 0)
    return served


def hub_commit(repo: str, token: str) -> str:
    """The commit the hub resolves `main` of `repo` to."""
    request = urllib.request.Request(
        f"{hub.ENDPOINT}/api/models/{repo}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        commit: str = json.load(answer)["sha"]
    return commit


def token_secret(namespace: str, token: str, name: str = "hf-token") -> Json:
    """The ModelCache's authSecret: the token under HF_TOKEN (and a key it must not copy)."""
    value = base64.b64encode(token.encode()).decode()
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"HF_TOKEN": value, "UNRELATED": value},
    }  # fmt: skip


@contextlib.contextmanager
def caches_released(control: Cluster) -> Iterator[None]:
    """After the block (cache-hydrator still running), every ModelCache deleted and waited
    for, so their copies leave the clusters before the services stop."""
    yield
    control.kubectl("delete", "modelcaches", "--all", "-A", "--wait=false")
    wait_for("every ModelCache released", lambda: not items(control, "modelcaches", "-A"), 120)
