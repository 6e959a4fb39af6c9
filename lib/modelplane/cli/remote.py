"""`modelplane explain` against the running fleet-scheduler, over gRPC.

Reads are idempotent, so the call retries transient failures within its deadline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc

from modelplane.cli import output
from modelplane.grpcutil.client import READ_RETRY_CODES, RetryPolicy, dial
from modelplane.grpcutil.tls import TlsFiles
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2 as pb
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2_grpc as pb_grpc
from modelplane.proto.placement import SERVICE_NAME, from_proto

DEFAULT_ADDRESS = "127.0.0.1:50061"
EXIT_OK = 0
EXIT_FAILED = 2


def tls_files(directory: str | None) -> TlsFiles | None:
    """Mutual-TLS files from `directory` (or $MODELPLANE_TLS_DIR): tls.crt, tls.key, ca.crt."""
    found = directory or os.environ.get("MODELPLANE_TLS_DIR")
    if not found:
        return None
    root = Path(found)
    return TlsFiles(root / "tls.crt", root / "tls.key", root / "ca.crt")


def explain_remote(
    address: str | None, namespace: str, name: str, tls_dir: str | None = None
) -> int:
    """Ask the fleet-scheduler at `address` to explain md/`name`; print it like offline output."""
    target = address or os.environ.get("MODELPLANE_FLEET_SCHEDULER") or DEFAULT_ADDRESS
    try:
        channel = dial(
            target,
            services=[SERVICE_NAME],
            retry=RetryPolicy(codes=READ_RETRY_CODES),
            tls=tls_files(tls_dir),
        )
    except (ValueError, OSError) as error:
        print(f"error: fleet-scheduler at {target}: {error}", file=sys.stderr)
        return EXIT_FAILED
    with channel:
        stub = pb_grpc.FleetSchedulerStub(channel)
        try:
            response = stub.Explain(pb.ExplainRequest(namespace=namespace, name=name))
        except grpc.RpcError as error:
            print(
                f"error: fleet-scheduler at {target}: {error.code().name}: {error.details()}",
                file=sys.stderr,
            )
            return EXIT_FAILED
    report = from_proto(response.deployment)
    sys.stdout.write(output.explain(report))
    return EXIT_FAILED if report.error else EXIT_OK
