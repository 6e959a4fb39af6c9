"""HTTPS at the front door: the listener, the redirect and the address, worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_config.decide import Settings, Snapshot, decide

from tests.gatewayobjects import entry, gateway, inference_gateway, model_service

Json = dict[str, Any]
NOW = "2026-12-03T15:00:00Z"
GATEWAY = gateway("10.240.0.1", conditions=[{"type": "Programmed", "status": "True"}])
SERVICE = model_service(entry("x"))


def decided(settings: Settings, **spec: Any) -> tuple[dict[tuple[str, str], Json], Json]:
    """The applied objects by (kind, name), and the InferenceGateway's status."""
    snapshot = Snapshot(
        inference_gateways=[inference_gateway(**spec)], model_services=[SERVICE], gateway=GATEWAY
    )
    decision = decide(snapshot, settings, NOW)
    applied = {(o["kind"], o["metadata"]["name"]): o for o in decision.apply}
    (status,) = [p.status for p in decision.status if p.kind == "InferenceGateway"]
    return applied, status


def test_with_a_certificate_the_gateway_serves_https_and_redirects_http() -> None:
    applied, status = decided(Settings(), tls={"secretName": "front-door-tls"})
    listeners = applied[("Gateway", "modelplane-gateway")]["spec"]["listeners"]
    assert [(x["name"], x["protocol"], x["port"]) for x in listeners] == [
        ("http", "HTTP", 80),
        ("hop", "HTTP", 8001),
        ("https", "HTTPS", 443),
    ]
    assert listeners[2]["tls"] == {
        "mode": "Terminate",
        "certificateRefs": [{"group": "", "kind": "Secret", "name": "front-door-tls"}],
    }
    assert status["address"] == "https://10.240.0.1"
    # the services' routes move to the https listener; http answers with a redirect only
    route = applied[("HTTPRoute", "chat")]
    assert route["spec"]["parentRefs"][0]["sectionName"] == "https"
    redirect = applied[("HTTPRoute", "modelplane-https-redirect")]
    assert redirect["metadata"]["namespace"] == "modelplane-system"
    assert redirect["spec"]["parentRefs"][0]["sectionName"] == "http"
    (rule,) = redirect["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["filters"] == [
        {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
    ]
    assert "backendRefs" not in rule


@pytest.mark.parametrize(
    ("spec", "address", "listener"),
    [({}, "http://10.240.0.1", "http"), ({"tls": {"secretName": "t"}}, "https://10.240.0.1:8443", "https")],
)  # fmt: skip
def test_the_address_names_the_scheme_and_a_port_not_its_own(
    spec: Json, address: str, listener: str
) -> None:
    applied, status = decided(Settings(https_port=8443), **spec)
    assert status["address"] == address
    assert applied[("HTTPRoute", "chat")]["spec"]["parentRefs"][0]["sectionName"] == listener
    redirect = applied.get(("HTTPRoute", "modelplane-https-redirect"))
    if listener == "https":
        assert redirect is not None
        assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"]["port"] == 8443
    else:
        assert redirect is None
