"""Objects and clients for tests that run the engine simulator on the local fleet."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from e2e.kube import Json

SIMULATOR_IMAGE = "modelplane/enginesim:dev"


def engine_container(*args: str, probe_period_s: int = 1, **env: str) -> Json:
    return {
        "name": "engine",
        "image": SIMULATOR_IMAGE,
        "args": ["--model=tiny", *args],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"name": "http", "containerPort": 8000}],
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": probe_period_s,
            "failureThreshold": 1,
        },
    }


@dataclass(frozen=True)
class Reply:
    status: int
    pod: str
    pod_ip: str
    headers: dict[str, str]
    body: Any


def call(url: str, body: Json | None = None, timeout_s: float = 10) -> Reply:
    """GET (or POST `body` as JSON) and return the status, serving pod and parsed body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            status, message, raw = reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        status, message, raw = error.code, error.headers, error.read()
    headers = {k.lower(): v for k, v in message.items()}
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(
        status,
        headers.get("x-modelplane-pod", ""),
        headers.get("x-modelplane-pod-ip", ""),
        headers,
        parsed,
    )
