"""Projected service-account tokens: the TokenRequest kubelet sends and when it refreshes (pure).

A `serviceAccountToken` projection asks the API server
(`POST /api/v1/namespaces/NS/serviceaccounts/SA/token`) for a token with the
projection's audience (none: the API server's own) and `expirationSeconds`
(default 3600), bound to the pod by name and uid, so it stops working when the
pod is gone. Like kubelet, a token is renewed once 80% of its lifetime has
passed, or once it is 24 hours old, whichever comes first.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_EXPIRATION_S = 3600
REFRESH_FRACTION = 0.8
MAX_AGE = datetime.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class TokenKey:
    """What makes two projections of one pod share a token."""

    audience: str
    expiration_s: int


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    issued: datetime.datetime
    expires: datetime.datetime

    def refresh_at(self) -> datetime.datetime:
        """When kubelet would ask for a new one: 80% of its life, or 24 h, whichever is first."""
        lifetime = (self.expires - self.issued) * REFRESH_FRACTION
        return self.issued + min(lifetime, MAX_AGE)

    def due(self, now: datetime.datetime) -> bool:
        return now >= self.refresh_at()


def key_of(projection: Mapping[str, Any]) -> TokenKey:
    """The token a `serviceAccountToken` projection wants."""
    expiration = int(projection.get("expirationSeconds") or DEFAULT_EXPIRATION_S)
    return TokenKey(str(projection.get("audience") or ""), expiration)


def request_body(pod: Mapping[str, Any], key: TokenKey) -> dict[str, Any]:
    """The TokenRequest for `key`, bound to `pod`."""
    meta = pod["metadata"]
    spec: dict[str, Any] = {
        "audiences": [key.audience] if key.audience else [],
        "expirationSeconds": key.expiration_s,
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def request_path(pod: Mapping[str, Any]) -> str:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    account = spec.get("serviceAccountName") or "default"
    return f"/api/v1/namespaces/{meta.get('namespace', 'default')}/serviceaccounts/{account}/token"


def from_response(response: Mapping[str, Any], issued: datetime.datetime) -> Token:
    """The token in a TokenRequest answer, issued at `issued` (the time we asked)."""
    status = response.get("status") or {}
    if not status.get("token"):
        raise ValueError("TokenRequest answer has no status.token")
    expires = datetime.datetime.fromisoformat(str(status["expirationTimestamp"]))
    return Token(str(status["token"]), issued, expires)
