"""values.yaml against values.schema.json: the defaults lint strictly, a wrong value is
refused by helm naming its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helm import CHART, run_helm, template_error

REFUSED = [
    ("replicas=-1", "/replicas"),
    ("replicas=two", "/replicas"),
    ("services.fleet-scheduler.replicas=0", "/services/fleet-scheduler/replicas"),
    ("services.cluster-provisioner.grpcPort=70000", "/services/cluster-provisioner/grpcPort"),
    ("services.gateway-config.gatewayPort=0", "/services/gateway-config/gatewayPort"),
    ("services.endpoint-manager.grpcPort=50081", "/services/endpoint-manager"),
    ("services.fleet-scheduler.extraArgs={verbose}", "/services/fleet-scheduler/extraArgs/0"),
    ("statusPort=-5", "/statusPort"),
    ("logLevel=LOUD", "/logLevel"),
    ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
    ("image.digest=latest", "/image/digest"),
    ("bindAddress=everywhere", "/bindAddress"),
    ("tls.certManager.enabled=true", "/tls/certManager/issuerRef/name"),
    ("tls.validityDays=0", "/tls/validityDays"),
    ("uninstall.timeoutSeconds=1", "/uninstall/timeoutSeconds"),
    ("uninstall.deleteResources=maybe", "/uninstall/deleteResources"),
    ("replica=2", "'replica' not allowed"),
]


def test_chart_lints_strictly(helm: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(("value", "path"), REFUSED, ids=[v for v, _ in REFUSED])
def test_a_wrong_value_is_refused_naming_its_path(helm: Path, value: str, path: str) -> None:
    message = template_error(helm, value)
    assert "schema" in message
    assert path in message, message


def test_the_hop_port_must_differ_from_the_gateway_port(helm: Path) -> None:
    message = template_error(helm, "services.gateway-config.hopPort=80")
    assert "services.gateway-config.hopPort" in message
