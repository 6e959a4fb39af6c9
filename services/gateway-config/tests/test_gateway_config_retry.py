"""The retry Middleware of each ModelService and the route filter that applies it."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_config.decide import Settings, Snapshot, decide
from gateway_config.render import backend_name

from tests.gatewayobjects import entry, model_service

NOW = "2026-12-03T15:00:00Z"
MANAGED = {"app.kubernetes.io/managed-by": "modelplane-gateway-config"}


def test_every_service_route_retries_500_502_to_504_and_connection_errors_through_its_middleware() -> (
    None
):
    decision = decide(Snapshot(model_services=[model_service(entry("x"))]), Settings(), NOW)
    by_kind: dict[str, list[Any]] = {}
    for obj in decision.apply:
        by_kind.setdefault(obj["kind"], []).append(obj)
    assert by_kind["Middleware"] == [
        {
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "Middleware",
            "metadata": {
                "name": "chat", "namespace": "ml",
                "labels": {**MANAGED, "modelplane.ai/model-service": "chat"},
                "ownerReferences": [{"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService",
                                     "name": "chat", "uid": "uid-chat", "controller": True}],
            },
            "spec": {"retry": {"attempts": 10, "status": ["500", "502-504"],
                               "retryNonIdempotentMethod": True,
                               # Traefik's "read the whole body as it comes": a bound is
                               # allocated whole for every request
                               "maxRequestBodyBytes": -1}},
        }
    ]  # fmt: skip
    (route,) = by_kind["HTTPRoute"]
    (rule,) = route["spec"]["rules"]
    assert rule["filters"] == [
        {"type": "ExtensionRef",
         "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "chat"}}
    ]  # fmt: skip
    # even the 503 stand-in of a service without endpoints goes through it
    assert [r["name"] for r in rule["backendRefs"]] == [backend_name("chat", None)]
    # it is applied before the route that names it
    kinds = [o["kind"] for o in decision.apply]
    assert kinds.index("Middleware") < kinds.index("HTTPRoute")


def test_a_body_bound_from_the_command_line_reaches_every_retry_middleware(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gateway_config.__main__ import main, parser

    assert parser().parse_args([]).retry_max_body_bytes == -1
    bound = parser().parse_args(["--retry-max-body-bytes", "65536"]).retry_max_body_bytes

    def retries(*entries: dict[str, Any]) -> dict[str, int]:
        settings = Settings(retry_max_body_bytes=bound)
        decision = decide(Snapshot(model_services=[model_service(*entries)]), settings, NOW)
        return {o["metadata"]["name"]: o["spec"]["retry"]["maxRequestBodyBytes"]
                for o in decision.apply if o["kind"] == "Middleware" and "retry" in o["spec"]}  # fmt: skip

    assert retries(entry("x")) == {"chat": 65536}
    # a service with a fallback: its failover link holds whole bodies already, so its
    # tiers' retry reads them whole too (a bound would only cost its allocation)
    assert list(retries(entry("x"), entry("y", priority=1)).values()) == [-1]
    for bad in ("0", "-2"):
        with pytest.raises(SystemExit) as exited:
            main(["--retry-max-body-bytes", bad])
        assert exited.value.code == 2
        assert "bad --retry-max-body-bytes" in capsys.readouterr().err


def test_without_retries_there_is_no_middleware_and_no_filter() -> None:
    from gateway_config.__main__ import parser
    from gateway_config.controller import managed_kinds, watched_paths

    assert parser().parse_args([]).retries is True
    off = Settings(retries=parser().parse_args(["--no-retries"]).retries)
    decision = decide(Snapshot(model_services=[model_service(entry("x"))]), off, NOW)
    assert [o["kind"] for o in decision.apply] == ["Service", "EndpointSlice", "HTTPRoute"]
    (route,) = [o for o in decision.apply if o["kind"] == "HTTPRoute"]
    assert "filters" not in route["spec"]["rules"][0]
    # nor does it watch the failover TraefikServices; Middlewares it still watches (API
    # keys use them whatever the retries; a 404 list where Traefik's CRDs are missing)
    assert "TraefikService" not in managed_kinds(off)
    watched = "?labelSelector=app.kubernetes.io/managed-by=modelplane-gateway-config"
    assert [p for p in watched_paths(off) if "traefik.io" in p] == [
        f"/apis/traefik.io/v1alpha1/middlewares{watched}"
    ]
    assert [p for p in watched_paths(Settings()) if "traefik.io" in p] == [
        f"/apis/traefik.io/v1alpha1/{plural}{watched}"
        for plural in ("middlewares", "traefikservices")
    ]
