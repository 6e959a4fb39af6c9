"""Wiring: routes, readiness, and the process's life from start to SIGTERM.

Guarantees: `/health` is 200 only once the startup delay has passed and the
group is complete (leader) or joined (worker), and while no test has declared
the engine unhealthy through `POST /simulator/health {"healthy": false}` (fault
injection: like an engine in trouble, it then refuses inference with 503 too);
every response carries the pod
identity headers; on SIGTERM or SIGINT the server stops accepting, lets
requests in flight finish for up to `GRACE_S`, and `run` returns 0. With a
certificate (`Settings.tls_cert`) it serves HTTPS only (TLS 1.2 or newer).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import TYPE_CHECKING, Any

from modelplane.httpserver import HttpServer, Request, Response, json_response, text_response

from modelplane_enginesim.anthropic_api import MessagesApi
from modelplane_enginesim.config import Settings
from modelplane_enginesim.engine import Engine
from modelplane_enginesim.group import Leader, Worker
from modelplane_enginesim.inference import Api, ApiError
from modelplane_enginesim.kvtransfer import BlockStore
from modelplane_enginesim.logs import log
from modelplane_enginesim.metrics import CONTENT_TYPE, Metrics
from modelplane_enginesim.openai_api import ChatApi, CompletionsApi, error_body
from modelplane_enginesim.serving import Serving
from modelplane_enginesim.sidechannel import SideChannel

if TYPE_CHECKING:
    import ssl

GRACE_S = 2.0
VERSION = "0.1.0"
INFERENCE: dict[str, tuple[Api, str]] = {
    "/v1/completions": (CompletionsApi(), "cmpl-"),
    "/v1/chat/completions": (ChatApi(), "chatcmpl-"),
    "/v1/messages": (MessagesApi(), "msg_"),
}


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.created = int(time.time())
        self.metrics = Metrics(settings.served_model_names[0], settings.max_concurrency)
        self.engine = Engine(
            self.metrics,
            settings.max_concurrency,
            settings.ttft_ms / 1000,
            settings.tpot_ms / 1000,
            settings.prefill_ms_per_token / 1000,
        )
        self.store = (
            BlockStore(settings.engine_id, settings.pod, settings.kv_lease_s)
            if settings.produces_kv
            else None
        )
        self.leader: Leader | None = None
        self.worker: Worker | None = None
        if settings.group_role == "leader":
            self.leader = Leader(settings.pod, settings.group_size)
        elif settings.group_role == "worker":
            assert settings.leader_address is not None
            self.worker = Worker(
                settings.pod,
                settings.group_size,
                settings.worker_index,
                settings.leader_address,
                settings.group_port,
            )
        self.declared_unhealthy = False
        self.serving = Serving(
            settings, self.engine, self.store, self.refusal, settings.side_channel_port
        )

    def unready(self) -> str | None:
        """Why /health is not 200, or None."""
        remaining = self.settings.startup_delay_ms / 1000 - (time.monotonic() - self.started)
        if remaining > 0:
            return f"loading model: startup delay, {remaining:.1f}s left"
        if self.leader is not None and not self.leader.ready:
            return self.leader.reason()
        if self.worker is not None and not self.worker.joined:
            return self.worker.reason()
        if self.declared_unhealthy:
            return "declared unhealthy through POST /simulator/health"
        return None

    def declare_health(self, request: Request) -> Response:
        try:
            healthy = json.loads(request.body or b"{}")["healthy"]
        except (ValueError, KeyError, TypeError):
            healthy = None
        if not isinstance(healthy, bool):
            error = ApiError(400, 'body must be {"healthy": true|false}', "healthy")
            return json_response(400, error_body(error))
        self.declared_unhealthy = not healthy
        log("health_declared", healthy=healthy)
        return json_response(200, {"healthy": healthy})

    def refusal(self) -> str | None:
        """Why inference is refused (503), or None."""
        if self.worker is not None:
            return (
                f"this engine is worker {self.settings.worker_index} of the group led by "
                f"{self.settings.leader_address}; send inference to the leader"
            )
        reason = self.unready()
        return None if reason is None else f"engine not ready: {reason}"

    async def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path in INFERENCE:
            api, prefix = INFERENCE[path]
            if method != "POST":
                return _not_allowed(method, path)
            return await self.serving.handle(api, prefix, request)
        if path == "/simulator/health" and method == "POST":
            return self.declare_health(request)
        if method not in ("GET", "HEAD"):
            if path in ("/health", "/ping", "/metrics", "/v1/models", "/v1/group", "/version"):
                return _not_allowed(method, path)
            return json_response(404, {"detail": "Not Found"})
        if path in ("/health", "/ping"):
            reason = self.unready()
            return Response(200) if reason is None else text_response(503, reason + "\n")
        if path == "/metrics":
            text = self.metrics.render(self.engine.running, self.engine.waiting)
            return Response(200, text.encode(), CONTENT_TYPE)
        if path == "/v1/models":
            return json_response(200, {"object": "list", "data": self.models()})
        if path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            found = [m for m in self.models() if m["id"] == name]
            if found:
                return json_response(200, found[0])
            return json_response(404, error_body(_not_found(name)))
        if path == "/v1/group":
            return json_response(200, self.group())
        if path == "/version":
            return json_response(200, {"version": VERSION, "engine": "modelplane-enginesim"})
        return json_response(404, {"detail": "Not Found"})

    def models(self) -> list[dict[str, Any]]:
        return [
            {
                "id": name,
                "object": "model",
                "created": self.created,
                "owned_by": "modelplane-enginesim",
                "root": self.settings.model,
                "parent": None,
                "max_model_len": self.settings.max_model_len,
            }
            for name in self.settings.served_model_names
        ]

    def group(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {
            "role": s.group_role,
            "group_size": s.group_size,
            "worker_index": s.worker_index,
            "leader_address": s.leader_address,
            "leader_ip": s.pod.ip if s.group_role != "worker" else None,
            "ready": self.unready() is None,
            "workers": self.leader.workers() if self.leader is not None else [],
        }
        if self.worker is not None:
            out["leader_ip"] = self.worker.leader_ip
            out["joined"] = self.worker.joined
        return out


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP (then `ssl` is never imported)."""
    if settings.tls_cert is None:
        return None
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def _not_allowed(method: str, path: str) -> Response:
    error = ApiError(405, f"method {method} is not allowed on {path}")
    allow = "POST" if path in INFERENCE else "GET, HEAD"
    return json_response(405, error_body(error), [("allow", allow)])


def _not_found(name: str) -> ApiError:
    return ApiError(404, f"The model `{name}` does not exist.", "model")


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    """Run until `stop` is set; returns the exit code."""
    app = App(settings)
    side_channel: SideChannel | None = None
    if app.store is not None:
        side_channel = SideChannel(app.store)
        port = await side_channel.start(settings.side_channel_host, settings.side_channel_port)
        app.serving.side_channel_port = port
        log(
            "side_channel_listening",
            host=settings.side_channel_host,
            port=port,
            engine_id=settings.engine_id,
        )
    if app.leader is not None:
        port = await app.leader.start(settings.host, settings.group_port)
        log("group_listening", host=settings.host, port=port, group_size=settings.group_size)
    if app.worker is not None:
        app.worker.start()
    pod = settings.pod
    http = HttpServer(
        app.handle,
        [("x-modelplane-pod", pod.qualified), ("x-modelplane-pod-ip", pod.ip)],
        log_error=lambda event, fields: log(event, None, **fields),
    )
    tls = _tls_context(settings)
    port = await http.start(settings.host, settings.port, tls)
    log(
        "listening",
        scheme="https" if tls else "http",
        address=f"[{settings.host}]:{port}" if ":" in settings.host else f"{settings.host}:{port}",
        port=port,
        model=settings.model,
        served=",".join(settings.served_model_names),
        pod=pod.qualified,
        ip=pod.ip,
        role=settings.group_role,
        kv_role=settings.kv_role,
        group=f"{settings.worker_index}/{settings.group_size}",
    )
    await stop.wait()
    log("stopping", in_flight=http.in_flight, grace_s=GRACE_S)
    await http.shutdown(GRACE_S)
    if side_channel is not None:
        side_channel.close()
    if app.leader is not None:
        app.leader.close()
    if app.worker is not None:
        app.worker.close()
    log("stopped")
    return 0


async def _main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await serve(settings, stop)


def run(settings: Settings) -> int:
    try:
        return asyncio.run(_main(settings))
    except OSError as error:
        log("failed", error=str(error))
        return 1
