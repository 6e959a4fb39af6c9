"""Mutual TLS from files: a client with a certificate the CA signed gets in, others do not."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from modelplane.grpcutil import GrpcServer, TlsFiles, dial, is_loopback, start_server
from modelplane.grpcutil.tls import TlsConfigError

from tests.grpcutil.echo import SERVICE, Echo, call

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(name: str, cwd: Path, extensions: str) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd,
    )  # fmt: skip
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca", cwd=d,
    )  # fmt: skip
    _issue("server", d, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _issue("client", d, "extendedKeyUsage=clientAuth\n")
    return d


@pytest.fixture
def mtls_server(pki: Path) -> Iterator[GrpcServer]:
    tls = TlsFiles(pki / "server.crt", pki / "server.key", pki / "ca.crt")
    running = start_server("127.0.0.1:0", Echo().register(), [SERVICE], tls=tls)
    yield running
    running.stop(0)


@needs_openssl
def test_a_client_with_a_certificate_from_the_ca_is_served(
    pki: Path, mtls_server: GrpcServer
) -> None:
    tls = TlsFiles(pki / "client.crt", pki / "client.key", pki / "ca.crt")
    with dial(mtls_server.address, tls=tls, retry=None, deadline_s=5) as channel:
        assert call(channel, b"secret") == b"secret"


@needs_openssl
def test_a_client_without_a_certificate_is_turned_away(pki: Path, mtls_server: GrpcServer) -> None:
    with (
        dial(mtls_server.address, tls=TlsFiles(ca=pki / "ca.crt"), retry=None, deadline_s=5) as ch,
        pytest.raises(grpc.RpcError) as failure,
    ):
        call(ch)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


@needs_openssl
def test_a_plain_client_cannot_talk_to_a_tls_server(mtls_server: GrpcServer) -> None:
    with (
        dial(mtls_server.address, retry=None, deadline_s=5) as channel,
        pytest.raises(grpc.RpcError) as failure,
    ):
        call(channel)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_without_its_key_is_a_configuration_error() -> None:
    with pytest.raises(TlsConfigError, match="both a certificate and its key"):
        TlsFiles(cert=Path("server.crt"))


def test_a_missing_file_fails_at_startup_naming_it(tmp_path: Path) -> None:
    tls = TlsFiles(tmp_path / "nope.crt", tmp_path / "nope.key")
    with pytest.raises(TlsConfigError, match=r"nope\.crt"):
        start_server("127.0.0.1:0", Echo().register(), [SERVICE], tls=tls)


def test_no_files_at_all_means_plain_transport() -> None:
    assert TlsFiles.from_paths(None, None, None) is None


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:50061", True),
        ("127.1.2.3:1", True),
        ("localhost:50061", True),
        ("[::1]:50061", True),
        ("dns:///localhost:50061", True),
        ("ipv4:127.0.0.1:50061", True),
        ("0.0.0.0:50061", False),
        ("[::]:50061", False),
        ("10.0.0.1:50061", False),
        ("scheduler.example.com:443", False),
    ],
)
def test_only_addresses_that_cannot_leave_the_machine_are_loopback(
    address: str, loopback: bool
) -> None:
    assert is_loopback(address) is loopback
