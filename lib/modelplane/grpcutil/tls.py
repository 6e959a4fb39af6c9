"""Transport security for gRPC: mutual TLS from files, or plain transport on loopback.

``TlsFiles(cert, key, ca)`` names PEM files. A server with ``ca`` requires and
verifies client certificates (mutual TLS); without ``ca`` it serves TLS to any
client. A client with ``ca`` verifies the server against it (else the system
roots) and presents ``cert``/``key`` when given.

Guarantees: files are read when credentials are built, so a missing file fails at
startup with its path in the message; ``is_loopback`` only answers True for
addresses that cannot leave the machine (127.0.0.0/8, ::1, localhost).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


class TlsConfigError(ValueError):
    """TLS settings that cannot work (half a key pair, an unreadable file)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM file paths; ``cert`` and ``key`` go together."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise TlsConfigError("TLS needs both a certificate and its key (--tls-cert, --tls-key)")

    @classmethod
    def from_paths(
        cls, cert: str | Path | None, key: str | Path | None, ca: str | Path | None
    ) -> TlsFiles | None:
        """The files given, or None when none is (plain transport)."""
        if cert is None and key is None and ca is None:
            return None
        return cls(*(Path(p) if p is not None else None for p in (cert, key, ca)))


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def server_credentials(tls: TlsFiles) -> Any:
    """Server credentials; client certificates are required exactly when ``tls.ca`` is set."""
    cert, key, ca = _read(tls.cert), _read(tls.key), _read(tls.ca)
    if cert is None or key is None:
        raise TlsConfigError("a TLS server needs a certificate and key (--tls-cert, --tls-key)")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def channel_credentials(tls: TlsFiles) -> Any:
    """Client credentials: verify the server with ``tls.ca``; present ``cert``/``key`` if set."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca),
        private_key=_read(tls.key),
        certificate_chain=_read(tls.cert),
    )


def host_of(address: str) -> str:
    """The host part of ``host:port``, ``[v6]:port`` or a ``dns:``/``ipv4:`` target."""
    target = address.split(":///", 1)[-1]
    for scheme in ("dns:", "ipv4:", "ipv6:"):
        target = target.removeprefix(scheme)
    if target.startswith("["):
        return target[1:].split("]", 1)[0]
    if target.count(":") == 1:
        return target.rsplit(":", 1)[0]
    return target


def is_loopback(address: str) -> bool:
    """True when ``address`` (host:port) can only be reached from this machine."""
    host = host_of(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
