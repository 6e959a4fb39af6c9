"""The simulator over HTTPS (`--tls-cert`/`--tls-key`), and without them no `ssl` at all.

A CA made here issues the server certificate for a host name; clients that trust
that CA and ask for that name get the usual answers and pod identity, a client
asking for another name or trusting another CA is refused in the handshake.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from modelplane_localfleet.pki import CertificateAuthority

from tests.enginesim.sim import Sim

NAME = "provider.modelplane.test"
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA file, certificate file, key file) for `NAME` and 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority.create("enginesim-test-ca", NOW)
    pair = ca.issue(NAME, NOW, dns_names=[NAME], ips=["127.0.0.1"], server=True)
    files = folder / "ca.crt", folder / "tls.crt", folder / "tls.key"
    for path, data in zip(files, (ca.pair().cert_pem, pair.cert_pem, pair.key_pem), strict=True):
        path.write_bytes(data)
    return files


def _trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def test_https_serves_the_api_with_its_identity(served: tuple[Path, Path, Path]) -> None:
    ca_file, cert, key = served
    sim = Sim("--tls-cert", str(cert), "--tls-key", str(key), "--pod-name", "provider")
    try:
        assert "scheme=https" in sim.wait_log("event=listening")
        url = f"https://127.0.0.1:{sim.port}"
        with httpx.Client(base_url=url, verify=_trusting(ca_file), timeout=10) as client:
            health = client.get("/health")
            chat = client.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
            )
        assert health.status_code == 200
        assert health.headers["x-modelplane-pod"] == "default/provider"
        assert chat.status_code == 200
        assert chat.json()["choices"][0]["message"]["role"] == "assistant"
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"http://127.0.0.1:{sim.port}/health", timeout=5)
    finally:
        sim.stop()


def test_a_client_checks_the_name_and_the_ca(served: tuple[Path, Path, Path]) -> None:
    ca_file, cert, key = served
    sim = Sim("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        right = _trusting(ca_file)
        with right.wrap_socket(_connect(sim.port), server_hostname=NAME) as tls:
            assert (tls.getpeercert() or {})["subject"] == ((("commonName", NAME),),)
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            right.wrap_socket(_connect(sim.port), server_hostname="other.modelplane.test")
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            ssl.create_default_context().wrap_socket(_connect(sim.port), server_hostname=NAME)
    finally:
        sim.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _loaded_ssl(sim: Sim) -> bool:
    """Whether the simulator process has mapped Python's `_ssl` extension (OpenSSL)."""
    return "_ssl" in Path(f"/proc/{sim.process.pid}/maps").read_text()


def test_only_a_tls_simulator_loads_ssl(served: tuple[Path, Path, Path]) -> None:
    _, cert, key = served
    plain, tls = Sim(), Sim("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert (_loaded_ssl(plain), _loaded_ssl(tls)) == (False, True)
    finally:
        plain.stop()
        tls.stop()
