"""Mutual TLS from files: a client with a certificate the CA signed gets in, others do not."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from modelplane.grpcutil import GrpcServer, TlsFiles, dial, is_loopback, start_server
from modelplane.grpcutil.tls import TlsConfigError
from modelplane_localfleet.pki import CertificateAuthority, KeyPair

from tests.grpcutil.echo import SERVICE, Echo, call


def _write(directory: Path, name: str, pair: KeyPair) -> None:
    (directory / f"{name}.crt").write_bytes(pair.cert_pem)
    (directory / f"{name}.key").write_bytes(pair.key_pem)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca = CertificateAuthority.create("test-ca", now)
    _write(d, "ca", ca.pair())
    _write(
        d,
        "server",
        ca.issue("server", now, dns_names=["localhost"], ips=["127.0.0.1"], server=True),
    )
    _write(d, "client", ca.issue("client", now, client=True))
    return d


@pytest.fixture
def mtls_server(pki: Path) -> Iterator[GrpcServer]:
    tls = TlsFiles(pki / "server.crt", pki / "server.key", pki / "ca.crt")
    running = start_server("127.0.0.1:0", Echo().register(), [SERVICE], tls=tls)
    yield running
    running.stop(0)


def test_a_client_with_a_certificate_from_the_ca_is_served(
    pki: Path, mtls_server: GrpcServer
) -> None:
    tls = TlsFiles(pki / "client.crt", pki / "client.key", pki / "ca.crt")
    with dial(mtls_server.address, tls=tls, retry=None, deadline_s=5) as channel:
        assert call(channel, b"secret") == b"secret"


def test_a_client_without_a_certificate_is_turned_away(pki: Path, mtls_server: GrpcServer) -> None:
    with (
        dial(mtls_server.address, tls=TlsFiles(ca=pki / "ca.crt"), retry=None, deadline_s=5) as ch,
        pytest.raises(grpc.RpcError) as failure,
    ):
        call(ch)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


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
