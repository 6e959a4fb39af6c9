"""The retry Middleware of each ModelService and the route filter that applies it."""

from __future__ import annotations

from typing import Any

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
                               "maxRequestBodyBytes": 1024 * 1024}},
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
