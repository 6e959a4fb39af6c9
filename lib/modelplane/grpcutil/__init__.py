"""Shared gRPC plumbing for every modelplane service and client.

- ``server``: build a server with the standard health service, mark services
  SERVING, and stop gracefully (health goes NOT_SERVING first, in-flight calls finish).
- ``client``: dial a service with a default per-call deadline and a retry policy for
  transient failures, both carried in the gRPC service config.
- ``tls``: mutual TLS from certificate, key and CA files; plain (insecure) transport is
  for loopback addresses only unless a caller says otherwise.
"""

from modelplane.grpcutil.client import (
    DEFAULT_RETRY,
    READ_RETRY_CODES,
    RetryPolicy,
    dial,
    service_config,
)
from modelplane.grpcutil.server import GrpcServer, start_server
from modelplane.grpcutil.tls import TlsFiles, is_loopback

__all__ = [
    "DEFAULT_RETRY",
    "READ_RETRY_CODES",
    "GrpcServer",
    "RetryPolicy",
    "TlsFiles",
    "dial",
    "is_loopback",
    "service_config",
    "start_server",
]
