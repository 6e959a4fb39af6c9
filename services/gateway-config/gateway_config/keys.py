"""API keys per caller at the front door (pure: the key table, the check, the Middleware).

Switched on by the InferenceGateway `default`'s `spec.apiKeys.required` (off by
default: the front door stays open). A key is a Secret of the key namespace
(`--api-key-namespace`) labelled `LABEL`: `data.key` the key itself, `data.services` the
ModelServices it may use (`<namespace>/<name>`, separated by commas or white
space; `*` for every service). Its key id, passed on to the backend in
`KEY_ID_HEADER` and counted in `/metrics`, is the Secret's name: never the key.

The table keeps only each key's SHA-256 digest; a presented key
(`Authorization: Bearer <key>` for OpenAI SDKs, `x-api-key: <key>` for Anthropic
SDKs) is hashed once and looked up. Answers (the OpenAI error shape):

- no key, or a key in no Secret: 401 `invalid_api_key`;
- a known key not scoped to the service: 403 `permission_denied` (the caller
  is known, the service is not theirs: a new key will not help, so not a 401);
- a key scoped to the service: 200 with `KEY_ID_HEADER`.

Every ModelService route gets a Middleware of the Traefik plugin
(`gateway_config.plugin`; `plugin_spec`), first among the route's filters, so a
refused request never reaches a backend. It holds the service's table: the
SHA-256 digests (hex) of the keys scoped to it (with their key ids) and of every
other key (for the 403), as lists of `<digest>:<key id>`, the two refusal
bodies, and where the plugin reports its per-key counts (`COUNTS_PATH` of
gateway-config's key server, every `COUNTS_SECONDS`) with the token it shows there
(`counts_token`, `Authorization: Bearer`; like the hop token, a digest of the
InferenceGateway's UID, so every copy of gateway-config knows it from its cache).
The check runs inside Traefik: no round trip per request. Whoever may read Middlewares in the
service's namespace sees the digests (never a key: keys are at least
`MIN_KEY_LENGTH` characters, meant to be random).

The hop listener (`gateway_config.hop`) has no key check of its own (its
requests arrive with the key headers already removed), so with keys required it
takes only what the front door's own routes send it: each service route sets
`HOP_HEADER` to `hop_token` (replacing a client's own; keys or not, so that
switching keys on never leaves a hop route requiring what is not sent yet), every
route on the hop listener removes it before the backend and, with keys required,
matches only requests carrying that value. A client that reaches the hop port
directly, without the token, meets no route (404). The token is a digest of the
InferenceGateway `default`'s UID (random, made by the API server, stable while
the object lives): it is in the rendered HTTPRoutes, so whoever may read
HTTPRoutes on the control cluster can learn it, never a client of the front door.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelplane.wellknown import Json

from gateway_config import plugin

Obj = Mapping[str, Any]

LABEL = "modelplane.ai/api-key"
KEY_FIELD = "key"
SERVICES_FIELD = "services"
ANY_SERVICE = "*"
KEY_ID_HEADER = "X-Modelplane-Key-Id"
KEY_HEADERS = ("Authorization", "X-Api-Key")
HOP_HEADER = "X-Modelplane-Hop"
MIN_KEY_LENGTH = 16
DEFAULT_NAMESPACE = "modelplane-api-keys"
COUNTS_PATH = "/counts"
COUNTS_SECONDS = 2
RESULTS = ("accepted", "missing", "unknown", "forbidden")
_SERVICE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def required(inference_gateways: Iterable[Obj]) -> bool:
    """Whether the InferenceGateway `default` asks for keys (`spec.apiKeys.required`)."""
    for gateway in inference_gateways:
        if gateway["metadata"]["name"] == "default":
            return bool(((gateway.get("spec") or {}).get("apiKeys") or {}).get("required"))
    return False


def _gateway_secret(inference_gateways: Iterable[Obj], purpose: str) -> str:
    """32 hex digits of a SHA-256 of `purpose` and the InferenceGateway `default`'s UID
    (random, made by the API server): "" while there is none."""
    for gateway in inference_gateways:
        if gateway["metadata"]["name"] == "default":
            uid = str(gateway["metadata"].get("uid") or "")
            return hashlib.sha256(f"{purpose}:{uid}".encode()).hexdigest()[:32]
    return ""


def hop_token(inference_gateways: Iterable[Obj]) -> str:
    """What the hop listener's routes require in `HOP_HEADER` while keys are required."""
    return _gateway_secret(inference_gateways, "modelplane-hop")


def counts_token(inference_gateways: Iterable[Obj]) -> str:
    """What the key plugin sends as `Authorization: Bearer` with its count reports, and the
    key server (`gateway_config.keyserver`) requires."""
    return _gateway_secret(inference_gateways, "modelplane-counts")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class Grant:
    key_id: str
    services: frozenset[str]

    def allows(self, service: str) -> bool:
        return ANY_SERVICE in self.services or service in self.services


@dataclass(frozen=True, slots=True)
class Table:
    grants: Mapping[bytes, Grant] = field(default_factory=dict)
    """By the key's SHA-256 digest."""
    problems: Sequence[str] = ()
    """One line per Secret (or entry) left out: the Secret and the field, never the key."""


def _field(secret: Obj, name: str) -> str | None:
    raw = (secret.get("data") or {}).get(name)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        return None


def table(secrets: Iterable[Obj]) -> Table:
    """The key table of the labelled Secrets (their names are the key ids)."""
    grants: dict[bytes, Grant] = {}
    problems: list[str] = []
    for secret in sorted(secrets, key=lambda s: s["metadata"]["name"]):
        meta = secret["metadata"]
        what = f"Secret {meta.get('namespace', '')}/{meta['name']}"
        key = _field(secret, KEY_FIELD)
        if not key or len(key) < MIN_KEY_LENGTH:
            problems.append(
                f"{what}: data.{KEY_FIELD} is missing, not UTF-8, or shorter than "
                f"{MIN_KEY_LENGTH} characters"
            )
            continue
        entries = (_field(secret, SERVICES_FIELD) or "").replace(",", " ").split()
        bad = [e for e in entries if e != ANY_SERVICE and not _SERVICE.match(e)]
        if bad:
            problems.append(
                f"{what}: data.{SERVICES_FIELD} entries {bad} are not <namespace>/<name> or *"
            )
        hashed = digest(key)
        if hashed in grants:
            problems.append(f"{what}: data.{KEY_FIELD} repeats the key of {grants[hashed].key_id}")
            continue
        grants[hashed] = Grant(meta["name"], frozenset(e for e in entries if e not in bad))
    return Table(grants, tuple(problems))


def secrets_path(namespace: str) -> str:
    """The labelled Secrets of the key namespace (the only Secrets gateway-config reads)."""
    return f"/api/v1/namespaces/{namespace}/secrets?labelSelector={LABEL}"


def refusal(status: int, service: str) -> str:
    """The OpenAI error shape of a 401 (no or unknown key) or a 403 (a key of other services)."""
    if status == 403:
        message = f"this API key may not use the ModelService {service}"
        kind, code = "permission_denied", "permission_denied"
    else:
        message = "a valid API key is required (Authorization: Bearer <key> or x-api-key)"
        kind, code = "invalid_request_error", "invalid_api_key"
    error = {"message": message, "type": kind, "param": None, "code": code}
    return json.dumps({"error": error}, separators=(",", ":"))


def plugin_spec(
    keys: Table, namespace: str, service: str, counts_url: str, counts_token: str
) -> Json:
    """The key plugin's Middleware settings for ModelService `<namespace>/<service>`, its
    count reports sent to `counts_url` with `counts_token`."""
    name = f"{namespace}/{service}"
    config: Json = {
        "service": name,
        "unauthorized": refusal(401, name),
        "forbidden": refusal(403, name),
        "countsURL": counts_url.rstrip("/") + COUNTS_PATH,
        "countsSeconds": COUNTS_SECONDS,
        "countsToken": counts_token,
    }
    # lists, always present: a pass compares what it wants with what it observes field by
    # field (a map entry or a field dropped would go unseen), and a list is compared whole
    entries = sorted((f"{d.hex()}:{g.key_id}", g.allows(name)) for d, g in keys.grants.items())
    config["allowed"] = [entry for entry, allows in entries if allows]
    config["denied"] = [entry for entry, allows in entries if not allows]
    return {"plugin": {plugin.NAME: config}}
