"""The fleet's certificates verify under strict TLS, on a real loopback handshake."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from modelplane_localfleet.pki import CertificateAuthority, KeyPair

NOW = datetime.datetime.now(datetime.UTC)


def _files(tmp: Path, name: str, pair: KeyPair) -> tuple[str, str]:
    (tmp / f"{name}.crt").write_bytes(pair.cert_pem)
    (tmp / f"{name}.key").write_bytes(pair.key_pem)
    return str(tmp / f"{name}.crt"), str(tmp / f"{name}.key")


def test_a_leaf_names_its_issuer_key_and_carries_the_sans_and_usages_asked_for() -> None:
    ca = CertificateAuthority.create("fleet-ca", NOW)
    pair = ca.issue(
        "kube-apiserver", NOW, ips=["127.0.0.1", "10.200.0.1"], dns_names=["localhost"], server=True
    )
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.200.0.1",
    ]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [u._name for u in usages] == ["serverAuth"]


def test_a_client_certificate_carries_user_and_groups() -> None:
    ca = CertificateAuthority.create("fleet-ca", NOW)
    cert = x509.load_pem_x509_certificate(
        ca.issue("admin", NOW, organizations=["system:masters"], client=True).cert_pem
    )
    assert cert.subject.rfc4514_string() == "CN=admin,O=system:masters"


def test_mutual_tls_handshake_with_strict_verification_succeeds(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("fleet-ca", NOW)
    (tmp_path / "ca.crt").write_bytes(ca.pair().cert_pem)
    server_cert, server_key = _files(
        tmp_path, "server", ca.issue("server", NOW, ips=["127.0.0.1"], server=True)
    )
    client_cert, client_key = _files(tmp_path, "client", ca.issue("client", NOW, client=True))

    server_ctx = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt")
    )
    server_ctx.load_cert_chain(server_cert, server_key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    client_ctx.load_cert_chain(client_cert, client_key)

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    peer: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])  # type: ignore[index, misc]
            peer.append(str(subject["commonName"]))
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(2) == b"ok"
    thread.join(5)
    listener.close()
    assert peer == ["client"]


def test_a_ca_survives_a_round_trip_through_pem() -> None:
    ca = CertificateAuthority.create("fleet-ca", NOW)
    again = CertificateAuthority.load(ca.pair())
    leaf = x509.load_pem_x509_certificate(again.issue("x", NOW, client=True).cert_pem)
    assert leaf.issuer == ca.cert.subject


def _rsa_ca_like_helms_gen_ca() -> KeyPair:
    """A CA as Helm's `genCA` makes it: RSA 2048, CA:TRUE, and here no subject key id."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelplane modelplane CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def test_a_charts_rsa_ca_issues_a_client_certificate_that_verifies_against_it() -> None:
    pair = _rsa_ca_like_helms_gen_ca()
    ca_cert = x509.load_pem_x509_certificate(pair.cert_pem)
    leaf = x509.load_pem_x509_certificate(
        CertificateAuthority.load(pair).issue("modelplane-cli", NOW, client=True).cert_pem
    )
    leaf.verify_directly_issued_by(ca_cert)
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
