"""Pods whose image is in the fleet's registry run from the image's own content.

The test builds a tiny image itself: a static Go HTTP server (`CGO_ENABLED=0
go build`) in a layer with an `/etc/passwd` naming user `app`, configured with
`crane mutate` (entrypoint, cmd, working directory, user, env) and pushed to
the fleet registry. The server reports what its process sees (uid, gid,
working directory, env, a name looked up in /etc/hosts), so the assertions are
about the running process, compared with what the image and the pod declare.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import urllib.request

import pytest
from modelplane_localfleet import registry
from modelplane_localfleet.binaries import default_cache
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.components import CRANE
from modelplane_localfleet.fleet import Fleet
from modelplane_localfleet.layout import CLUSTER_RANGE

from e2e.backends import harness
from e2e.kube import Json, apply, get, is_ready, items, wait_for
from tests.registry import crane_output

pytestmark = pytest.mark.usefixtures("local_fleet")

CRANE_BINARY = CRANE.entry(default_cache()) / "crane"
UID, GID, PORT = 1234, 2345, 8080
SERVER = """
package main

import (
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"os"
)

func main() {
	port := flag.String("port", "", "port")
	flag.Parse()
	os.WriteFile("/data/started", []byte("started"), 0o644)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	http.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		cwd, _ := os.Getwd()
		groups, _ := os.Getgroups()
		addresses, err := net.LookupHost(r.URL.Query().Get("name"))
		problem := ""
		if err != nil {
			problem = err.Error()
		}
		json.NewEncoder(w).Encode(map[string]any{
			"uid": os.Getuid(), "gid": os.Getgid(), "groups": groups, "cwd": cwd,
			"env": os.Environ(), "args": os.Args, "addresses": addresses, "problem": problem,
		})
	})
	http.ListenAndServe(os.Getenv("POD_IP")+":"+*port, nil)
}
"""


def _add(
    archive: tarfile.TarFile,
    name: str,
    data: bytes | None,
    mode: int,
    owner: tuple[int, int] = (0, 0),
) -> None:
    info = tarfile.TarInfo(name)
    info.mode, (info.uid, info.gid) = mode, owner
    if data is None:
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
    else:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def crane(*args: str) -> str:
    return crane_output(CRANE_BINARY, "--insecure", *args)


@pytest.fixture(scope="module")
def server_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The server image, built and pushed to the fleet registry; its reference."""
    work = tmp_path_factory.mktemp("image")
    (work / "main.go").write_text(SERVER)
    (work / "go.mod").write_text("module probeserver\n\ngo 1.22\n")
    built = subprocess.run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "probe-server", "."],
        cwd=work, env={**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"},
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    layer = work / "layer.tar"
    with tarfile.open(layer, "w") as archive:
        for folder in ("etc", "usr", "usr/local", "usr/local/bin", "srv", "data"):
            _add(archive, folder, None, 0o755)
        _add(archive, "srv/app", None, 0o755, owner=(UID, GID))
        passwd = f"root:x:0:0::/root:/bin/sh\napp:x:{UID}:{GID}::/srv/app:/bin/sh\n"
        _add(archive, "etc/passwd", passwd.encode(), 0o644)
        _add(archive, "etc/group", f"root:x:0:\napp:x:{GID}:\n".encode(), 0o644)
        _add(archive, "usr/local/bin/probe-server", (work / "probe-server").read_bytes(), 0o755)
    ref = f"{registry.ADDRESS}/e2e/probe-server:v1"
    crane("append", "--oci-empty-base", "-f", str(layer), "-t", ref)
    crane(
        "mutate", ref, "--entrypoint=/usr/local/bin/probe-server", f"--cmd=--port={PORT}",
        "--workdir=/srv/app", "--user=app", "--env=FROM_IMAGE=image", "--env=SHARED=image",
        "-t", ref,
    )  # fmt: skip
    return ref


def pod(name: str, namespace: str, image: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "server",
                "image": image,
                "env": [
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "SHARED", "value": "pod"},
                ],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 1
                },
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }  # fmt: skip


def events(east: Cluster, namespace: str, name: str) -> list[tuple[str, str]]:
    found = items(east, "events", "-n", namespace, f"--field-selector=involvedObject.name={name}")
    return [(e["reason"], e["message"]) for e in found]


def test_a_pod_runs_its_image_as_the_image_says(
    east: Cluster, east_namespace: str, server_image: str
) -> None:
    apply(east, pod("served", east_namespace, server_image))

    def served() -> Json | None:
        found = get(east, "pod", "-n", east_namespace, "served")
        return found if is_ready(found) else None

    ready = wait_for("the image's pod to turn Ready", served, timeout_s=120)
    status = ready["status"]["containerStatuses"][0]
    digest = crane("digest", server_image)
    assert status["imageID"] == f"{registry.ADDRESS}/e2e/probe-server@{digest}"
    pod_ip = ready["status"]["podIP"]
    url = f"http://{pod_ip}:{PORT}/info?name={registry.HOSTNAME}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        seen = json.loads(reply.read())
    env = dict(entry.split("=", 1) for entry in seen["env"])
    assert (seen["uid"], seen["gid"], seen["cwd"]) == (UID, GID, "/srv/app")
    assert seen["args"] == ["/usr/local/bin/probe-server", f"--port={PORT}"]
    assert (env["FROM_IMAGE"], env["SHARED"], env["POD_IP"]) == ("image", "pod", pod_ip)
    assert env["HOSTNAME"] == "served"
    assert seen["addresses"] == [str(CLUSTER_RANGE[1])], seen["problem"]
    pods = east.run_dir / "node-agent" / "pods"
    started = list(pods.glob(f"{east_namespace}_served_*/volumes/data/started"))
    assert [p.read_text() for p in started] == ["started"]
    reasons = [reason for reason, _ in events(east, east_namespace, "served")]
    assert "Pulled" in reasons and "Started" in reasons


def test_an_image_missing_from_the_registry_backs_off_with_the_reason(
    east: Cluster, east_namespace: str
) -> None:
    image = f"{registry.ADDRESS}/e2e/never-pushed:v1"
    apply(east, pod("missing", east_namespace, image))

    def backing_off() -> Json | None:
        found = get(east, "pod", "-n", east_namespace, "missing")
        statuses = (found.get("status") or {}).get("containerStatuses") or []
        if not statuses:  # not bound yet, or the agent has not posted its status
            return None
        waiting: Json = statuses[0]["state"].get("waiting") or {}
        return waiting if waiting.get("reason") == "ImagePullBackOff" else None

    waiting = wait_for("ImagePullBackOff", backing_off, timeout_s=60)
    assert f'Back-off pulling image "{image}"' in waiting["message"]
    assert "answered 404" in waiting["message"]
    seen = events(east, east_namespace, "missing")
    assert ("Pulling", f'Pulling image "{image}"') in seen
    assert ("Failed", "Error: ErrImagePull") in seen
    assert any(r == "Failed" and m.startswith(f'Failed to pull image "{image}"') for r, m in seen)
    assert ("BackOff", f'Back-off pulling image "{image}"') in seen
    assert get(east, "pod", "-n", east_namespace, "missing")["status"]["phase"] == "Pending"


def test_the_registry_is_a_health_probed_component_of_the_control_cluster(
    local_fleet: Fleet, server_image: str
) -> None:
    rows = {s.component: s for s in local_fleet.cluster("control").status()}
    assert rows["registry"].healthy, rows["registry"].detail
    with urllib.request.urlopen(f"http://{registry.ADDRESS}/v2/_catalog", timeout=5) as reply:
        assert "e2e/probe-server" in json.loads(reply.read())["repositories"]
    assert (local_fleet.state / "registry").is_dir()
    by_name = f"{registry.HOSTNAME}:{registry.PORT}/e2e/probe-server:v1"
    outside = harness(
        "exec", "--state", str(local_fleet.state), "--",
        str(CRANE_BINARY), "digest", "--insecure", by_name,
    )  # fmt: skip
    assert outside.returncode == 0, outside.stderr
    assert outside.stdout.strip() == crane("digest", server_image)
