"""gRPC calls e2e tests make, run in a child process: `python -m e2e.grpc_client CMD ...`.

gRPC's core keeps its own threads; in the pytest process some were started by
earlier (unit) tests outside the fleet's network namespace, so a channel made
there would dial from the wrong namespace. A child process started from the
test thread is wholly inside the namespace. Each command prints one JSON object
of what it observed; the tests assert on it.

- `fleet-roundtrip TARGET TLS_DIR`: Watch, Apply, Get, List, Delete (twice), Get
  of the deleted object and List on an unknown cluster, on `east`.
- `refused SERVICE TARGET TLS_DIR`: one call with the full client certificate
  (must work), one with only the CA and one in plain text; their status codes.
- `report-held TARGET TLS_DIR NAMESPACE SERVICE HELD`: one `Activation.ReportHeld`
  from the activator `e2e-activator` (HELD requests held for that ModelService; 0 clears).
- `scaler-metrics TARGET TLS_DIR NAMESPACE DEPLOYMENT`: `ExternalScaler.GetMetrics` and
  `IsActive` for a trigger naming DEPLOYMENT (metric `inFlight`), as KEDA asks them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import grpc
from modelplane.grpcutil.client import dial
from modelplane.grpcutil.tls import TlsFiles
from modelplane.proto.gen.externalscaler import externalscaler_pb2 as epb
from modelplane.proto.gen.externalscaler import externalscaler_pb2_grpc as egrpc
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2 as apb
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2_grpc as agrpc
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2 as fpb
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2_grpc as fgrpc
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2 as spb
from modelplane.proto.gen.modelplane.fleetscheduler.v1 import fleet_scheduler_pb2_grpc as sgrpc

FLEET = "modelplane.fleet.v1.Fleet"
SCHEDULER = "modelplane.fleetscheduler.v1.FleetScheduler"


def full_tls(directory: str) -> TlsFiles:
    root = Path(directory)
    return TlsFiles(root / "tls.crt", root / "tls.key", root / "ca.crt")


def _error(call: Any) -> list[str]:
    try:
        call()
    except grpc.RpcError as error:
        return [error.code().name, str(error.details())]
    return ["OK", ""]


def fleet_roundtrip(target: str, tls_dir: str) -> dict[str, Any]:
    kind = fpb.Kind(cluster="east", api_version="v1", resource="configmaps")
    obj = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "via-fleet", "namespace": "default", "labels": {"e2e": "fleet"}},
        "data": {"hello": "east"},
    }  # fmt: skip
    ref = fpb.ObjectRef(kind=kind, namespace="default", name="via-fleet")
    selected = fpb.ListRequest(kind=kind, namespace="default", label_selector="e2e=fleet")
    out: dict[str, Any] = {}
    with dial(target, services=[FLEET], tls=full_tls(tls_dir)) as channel:
        fleet = fgrpc.FleetStub(channel)
        stream = fleet.Watch(selected, timeout=30)
        request = fpb.ApplyRequest(kind=kind, object_json=json.dumps(obj), field_manager="e2e")
        out["applied"] = json.loads(fleet.Apply(request).object_json)["metadata"]["name"]
        out["got"] = json.loads(fleet.Get(ref).object_json)["data"]
        out["listed"] = [
            json.loads(o)["metadata"]["name"] for o in fleet.List(selected).objects_json
        ]
        first = next(stream)
        out["first_event"] = [first.type, json.loads(first.object_json)["metadata"]["name"]]
        out["deleted"] = fleet.Delete(ref).found
        out["next_event"] = next(stream).type
        stream.cancel()
        out["deleted_again"] = fleet.Delete(ref).found
        out["get_missing"] = _error(lambda: fleet.Get(ref))
        nowhere = fpb.Kind(cluster="nowhere", api_version="v1", resource="configmaps")
        out["unknown_cluster"] = _error(lambda: fleet.List(fpb.ListRequest(kind=nowhere)))
    return out


def refused(service: str, target: str, tls_dir: str) -> dict[str, Any]:
    def call(tls: TlsFiles | None) -> list[str]:
        name = FLEET if service == "fleet" else SCHEDULER
        channel = dial(
            target, services=[name], tls=tls, allow_insecure=True, retry=None, deadline_s=5
        )
        with channel:
            if service == "fleet":
                stub: Any = fgrpc.FleetStub(channel)
                kind = fpb.Kind(cluster="east", api_version="v1", resource="namespaces")
                return _error(lambda: stub.List(fpb.ListRequest(kind=kind)))
            stub = sgrpc.FleetSchedulerStub(channel)
            return _error(lambda: stub.Explain(spb.ExplainRequest(namespace="x", name="y")))

    ca_only = TlsFiles(ca=Path(tls_dir) / "ca.crt")
    return {"with_cert": call(full_tls(tls_dir)), "ca_only": call(ca_only), "plain": call(None)}


def report_held(
    target: str, tls_dir: str, namespace: str, service: str, held: str
) -> dict[str, Any]:
    entry = apb.HeldService(namespace=namespace, service=service, held=int(held))
    report = apb.HeldReport(activator="e2e-activator", services=[entry] if int(held) else [])
    with dial(target, tls=full_tls(tls_dir), deadline_s=10) as channel:
        agrpc.ActivationStub(channel).ReportHeld(report)
    return {"reported": int(held)}


def scaler_metrics(target: str, tls_dir: str, namespace: str, deployment: str) -> dict[str, Any]:
    ref = epb.ScaledObjectRef(
        name="e2e", namespace=namespace, scalerMetadata={"deployment": deployment}
    )
    with dial(target, tls=full_tls(tls_dir), deadline_s=10) as channel:
        keda = egrpc.ExternalScalerStub(channel)
        value = keda.GetMetrics(epb.GetMetricsRequest(scaledObjectRef=ref)).metricValues[0]
        return {"inFlight": value.metricValueFloat, "active": keda.IsActive(ref).result}


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "fleet-roundtrip":
        result = fleet_roundtrip(*args)
    elif command == "refused":
        result = refused(*args)
    elif command == "report-held":
        result = report_held(*args)
    elif command == "scaler-metrics":
        result = scaler_metrics(*args)
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
