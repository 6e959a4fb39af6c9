"""The command-line flags every gRPC-serving service takes, defined once.

`add_server_flags` adds `--listen`, `--tls-cert`, `--tls-key`, `--tls-ca`,
`--insecure` and `--grace`; `server_tls` turns the parsed flags into
`TlsFiles` (or None for plain transport, allowed off loopback only with
`--insecure`).
"""

from __future__ import annotations

import argparse

from modelplane.grpcutil.tls import TlsFiles


def add_server_flags(parser: argparse.ArgumentParser, default_listen: str) -> None:
    parser.add_argument(
        "--listen",
        default=default_listen,
        help=f"gRPC host:port (default {default_listen}; port 0 picks one)",
    )
    parser.add_argument("--tls-cert", help="PEM server certificate (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-ca", help="PEM CA bundle; when set, clients must present a certificate it signed"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain (unencrypted) gRPC on a non-loopback address",
    )
    parser.add_argument(
        "--grace", type=float, default=5.0, help="seconds in-flight calls get at shutdown"
    )


def server_tls(args: argparse.Namespace) -> TlsFiles | None:
    return TlsFiles.from_paths(args.tls_cert, args.tls_key, args.tls_ca)
