"""The scaler's gRPC services, called as KEDA and the activator call them: real gRPC, mutual TLS.

The server is `grpcutil.start_server` with the servicers of `endpoint_manager.scaler`;
the clients are the generated stubs over a real channel, with certificates from a CA of
the local fleet's own PKI. The state is filled as the scrape loop fills it.
"""

from __future__ import annotations

import datetime
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from endpoint_manager.scaler import (
    SERVICES,
    ActivationServicer,
    ScalerServicer,
    Targets,
    register,
)
from endpoint_manager.scalermetrics import EngineSample, Objects
from endpoint_manager.scalerstate import ScalerState
from modelplane.grpcutil import GrpcServer, TlsFiles, dial, start_server
from modelplane.proto.gen.externalscaler import externalscaler_pb2 as pb
from modelplane.proto.gen.externalscaler import externalscaler_pb2_grpc as pb_grpc
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2 as apb
from modelplane.proto.gen.modelplane.activation.v1 import activation_pb2_grpc as apb_grpc
from modelplane_localfleet.pki import CertificateAuthority

Json = dict[str, Any]
NOW = 500.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca = CertificateAuthority.create("scaler-test-ca", now)
    issued = {
        "ca": ca.pair(),
        "server": ca.issue("endpoint-manager", now, ips=["127.0.0.1"], server=True, client=True),
        "keda": ca.issue("keda", now, client=True),
    }
    for name, pair in issued.items():
        (directory / f"{name}.crt").write_bytes(pair.cert_pem)
        (directory / f"{name}.key").write_bytes(pair.key_pem)
    return directory


def objects() -> Objects:
    qwen = {"metadata": {"name": "qwen", "namespace": "ml", "labels": {"tier": "gold"}}}
    chat = {
        "metadata": {"name": "chat", "namespace": "ml"},
        "spec": {"endpoints": [{"selector": {"matchLabels": {"tier": "gold"}}}]},
    }
    east = {
        "metadata": {"name": "qwen-east-0", "namespace": "ml"},
        "spec": {"deploymentName": "qwen", "clusterName": "east"},
        "status": {
            "address": "http://gw/ml/qwen-east-0",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    return Objects({"ml/qwen": qwen}, [chat], [east])


class Scaler:
    def __init__(self, server: GrpcServer, state: ScalerState, clock: Clock, channel: Any) -> None:
        self.server, self.state, self.clock = server, state, clock
        self.keda = pb_grpc.ExternalScalerStub(channel)
        self.activation = apb_grpc.ActivationStub(channel)


@pytest.fixture
def scaler(pki: Path) -> Iterator[Scaler]:
    state, clock = ScalerState(), Clock()
    looked_up: dict[tuple[str, str], Json] = {
        ("ml", "by-target"): {
            "spec": {"scaleTargetRef": {"kind": "ModelDeployment", "name": "qwen"}}
        }
    }
    targets = Targets(lambda ns, name: looked_up.get((ns, name)), clock)
    server = start_server(
        "127.0.0.1:0",
        register(
            ScalerServicer(state, targets, clock, push_every_s=60), ActivationServicer(state, clock)
        ),
        SERVICES,
        tls=TlsFiles(pki / "server.crt", pki / "server.key", pki / "ca.crt"),
    )
    tls = TlsFiles(pki / "keda.crt", pki / "keda.key", pki / "ca.crt")
    with dial(server.address, tls=tls, retry=None, deadline_s=20) as channel:
        yield Scaler(server, state, clock, channel)
    server.stop(0)


def ref(name: str = "qwen-so", **metadata: str) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name=name, namespace="ml", scalerMetadata=metadata)


def held(activator: str, count: int) -> apb.HeldReport:
    entry = apb.HeldService(namespace="ml", service="chat", held=count, oldest_wait_seconds=0.5)
    return apb.HeldReport(activator=activator, services=[entry] if count else [])


def test_before_the_cache_has_listed_every_call_is_unavailable(scaler: Scaler) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        scaler.keda.IsActive(ref(deployment="qwen"))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def test_keda_reads_the_in_flight_sum_and_its_target(scaler: Scaler) -> None:
    scaler.state.set_objects(objects(), {"ml/qwen-east-0"})
    scaler.state.set_samples({"ml/qwen-east-0": EngineSample(3, 2, NOW)})
    asked = ref(deployment="qwen", targetPerReplica="2")
    spec = scaler.keda.GetMetricSpec(asked).metricSpecs
    assert [(s.metricName, s.targetSize, s.targetSizeFloat) for s in spec] == [
        ("inflight-qwen", 2, 2.0)
    ]
    got = scaler.keda.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=asked, metricName="inflight-qwen")
    )
    assert [(v.metricName, v.metricValue, v.metricValueFloat) for v in got.metricValues] == [
        ("inflight-qwen", 5, 5.0)
    ]
    waiting = ref(deployment="qwen", metric="waiting")
    got = scaler.keda.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=waiting))
    assert got.metricValues[0].metricValueFloat == 2.0
    assert scaler.keda.IsActive(asked).result is True
    spec_stream = scaler.keda.StreamMetricSpec(asked)
    assert next(spec_stream).metricSpecs[0].metricName == "inflight-qwen"
    spec_stream.cancel()  # held open until the caller ends it


def test_the_deployment_defaults_to_the_scaled_objects_model_deployment_target(
    scaler: Scaler,
) -> None:
    scaler.state.set_objects(objects(), set())
    spec = scaler.keda.GetMetricSpec(ref("by-target")).metricSpecs[0]
    assert spec.metricName == "inflight-qwen"
    with pytest.raises(grpc.RpcError) as failure:
        scaler.keda.GetMetricSpec(ref("unknown-so"))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ScaledObject ml/unknown-so: trigger metadata `deployment` is required" in str(
        failure.value.details()
    )


def test_bad_metadata_and_unknown_deployments_are_named(scaler: Scaler) -> None:
    scaler.state.set_objects(objects(), set())
    with pytest.raises(grpc.RpcError) as failure:
        scaler.keda.IsActive(ref(deployment="qwen", metric="tokens"))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "`metric`: 'tokens'" in str(failure.value.details())
    with pytest.raises(grpc.RpcError) as failure:
        scaler.keda.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(deployment="gone")))
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert failure.value.details() == "ModelDeployment ml/gone not found"


def test_a_held_request_is_pushed_at_once_and_counts_in_the_metric(scaler: Scaler) -> None:
    scaler.state.set_objects(objects(), set())
    stream = scaler.keda.StreamIsActive(ref(deployment="qwen"))
    answers: queue.Queue[bool] = queue.Queue()

    def read() -> None:
        try:
            for answer in stream:
                answers.put(answer.result)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.CANCELLED  # the test's own cancel

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert answers.get(timeout=10) is False  # at zero, nothing held: the first answer
    scaler.activation.ReportHeld(held("activator-0", 2))
    # push_every_s is 60: only the report can have woken the stream
    assert answers.get(timeout=10) is True
    asked = pb.GetMetricsRequest(scaledObjectRef=ref(deployment="qwen"))
    assert scaler.keda.GetMetrics(asked).metricValues[0].metricValue == 2
    scaler.activation.ReportHeld(held("activator-1", 3))
    assert scaler.keda.GetMetrics(asked).metricValues[0].metricValue == 5  # two activators add up
    scaler.activation.ReportHeld(held("activator-0", 0))  # no services: cleared
    scaler.activation.ReportHeld(held("activator-1", 0))
    assert answers.get(timeout=10) is False
    stream.cancel()
    reader.join(10)


def test_an_activator_that_stops_reporting_holds_nothing_after_15_s(scaler: Scaler) -> None:
    scaler.state.set_objects(objects(), set())
    scaler.activation.ReportHeld(held("activator-0", 4))
    assert scaler.keda.IsActive(ref(deployment="qwen")).result is True
    scaler.clock.now += 16
    assert scaler.keda.IsActive(ref(deployment="qwen")).result is False


def test_a_report_without_its_identity_is_refused_naming_the_field(scaler: Scaler) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        scaler.activation.ReportHeld(apb.HeldReport(services=[apb.HeldService(service="chat")]))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details() == "HeldReport.activator: required"
    nameless = apb.HeldReport(activator="a", services=[apb.HeldService(service="chat")])
    with pytest.raises(grpc.RpcError) as failure:
        scaler.activation.ReportHeld(nameless)
    assert failure.value.details() == "HeldReport from 'a': services[0].namespace: required"


def test_a_caller_without_a_client_certificate_is_turned_away(pki: Path, scaler: Scaler) -> None:
    tls = TlsFiles(ca=pki / "ca.crt")
    with (
        dial(scaler.server.address, tls=tls, retry=None, deadline_s=5) as channel,
        pytest.raises(grpc.RpcError) as failure,
    ):
        pb_grpc.ExternalScalerStub(channel).IsActive(ref(deployment="qwen"))
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plain_grpc_off_loopback_is_refused_before_anything_starts() -> None:
    from endpoint_manager.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["--scaler-address=10.9.9.9:50081", "--kubeconfig=/nonexistent"])
    assert exited.value.code == 2
