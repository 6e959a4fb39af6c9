"""The job publishes its progress into its ConfigMap: a run against the hub double with
`--report-configmap` merge-patches `data["status.json"]` of that ConfigMap over HTTPS
with the pod's service-account token, ending with the Ready report, as cache-hydrator
reads it. The API server is a recording HTTPS server trusted through the account's CA."""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cache_hydrator import report
from cache_hydrator.hydrate import main
from modelplane_localfleet.pki import CertificateAuthority


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str, str, dict[str, Any]]]] = []

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(
            (self.path, self.headers["Authorization"], self.headers["Content-Type"], "", body)
        )
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    now = datetime.datetime.now(datetime.UTC)
    ca = CertificateAuthority.create("test-ca", now)
    leaf = ca.issue("apiserver", now, ips=["127.0.0.1"], server=True)
    (tmp_path / "tls.crt").write_bytes(leaf.cert_pem)
    (tmp_path / "tls.key").write_bytes(leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token\n")
    (account / "namespace").write_text("ml")
    (account / "ca.crt").write_bytes(ca.pair().cert_pem)
    monkeypatch.setattr(report, "ACCOUNT", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.server_address[1]))
    Recorder.seen = []
    yield Recorder.seen
    server.shutdown()
    server.server_close()


def test_a_run_reports_into_its_configmap_ending_ready(
    hub: Any, tmp_path: Path, api_server: list[Any]
) -> None:
    run = hub.hydrate(tmp_path / "cache", "--repo", hub.model, "--report-configmap", "progress")
    assert run.code == 0
    assert len(api_server) >= 2  # the first report and the last, at least
    for path, auth, content_type, _, body in api_server:
        assert path == "/api/v1/namespaces/ml/configmaps/progress"
        assert auth == "Bearer pod-token"
        assert content_type == "application/merge-patch+json"
        assert list(body) == ["data"] and list(body["data"]) == ["status.json"]
    last = json.loads(api_server[-1][4]["data"]["status.json"])
    assert last == {**run.status, "updated": last["updated"]}
    assert (last["phase"], last["bytesDone"]) == (
        "Ready",
        sum(map(len, hub.files(hub.model).values())),
    )


def test_without_in_cluster_credentials_the_flag_is_a_command_line_error(
    hub: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--repo", hub.model, "--dir", str(tmp_path), "--report-configmap", "p"])
    assert exited.value.code == 2
