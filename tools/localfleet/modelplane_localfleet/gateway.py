"""Traefik as a cluster's Gateway API implementation, run as a process outside any pod.

Guarantees of the command line `traefik_command` builds:
- Traefik's Kubernetes Gateway provider is on, reads the cluster through the
  kubeconfig in `KUBECONFIG` (`traefik_env`; it uses that when not in a pod) and
  writes the cluster's address into every Gateway's `status.addresses`.
- One entrypoint `web` on `address:web_port` carries Gateway listeners (a
  listener's port must equal an entrypoint's port); the ping endpoint lives on a
  separate admin entrypoint, so health checks never mix with routed traffic.
- Given `hop_port` (the control cluster's front door), a second entrypoint
  `hop` on `address:hop_port` for the Gateway's `hop` listener: gateway-config
  sends every backend that is not h2c back into this Traefik over h2c on that
  port (`gateway_config.hop`; golang/go#40747 cuts streams relayed HTTP/1.1 to
  HTTP/1.1 from an HTTP/1.1 client side). Its timeouts are lifted like
  `web`'s, and it trusts the forwarded headers the gateway itself sets
  (`address` only), so a provider still sees the client's address first in
  `X-Forwarded-For`.
- Given `hop_port`, a third entrypoint `websecure` on `address:https_port` (443
  unless told: benchmarks and tests on loopback pick a free port) for the
  Gateway's `https` listener, which gateway-config adds when the
  InferenceGateway names a certificate (`spec.tls.secretName`; Traefik reads
  the Secret, the RBAC below allows it); its timeouts are lifted like `web`'s.
- No request is cut by a timeout. A write timeout would end a long SSE stream
  silently (the client sees 200 and a truncated stream), so it is pinned to 0;
  Traefik v3's 60 s read timeout covers only reading the request (a slow upload),
  not the response, and is lifted too.
- Traefik never phones home (no version check, no anonymous usage report).
- Idle backend connections are dropped after `BACKEND_IDLE_S` seconds, below
  the 5 s keep-alive of uvicorn (vLLM's server), so Traefik drops an idle
  connection before such a backend does instead of sending a request on one
  the backend is closing (a POST there is a 502: Go retries no
  non-idempotent request). This sets the default transport (plain HTTP and
  h2c backends).
- Given `hop_port` (the front door), Traefik's Kubernetes CRD provider is on
  too: gateway-config's HTTPRoutes reach its retry `Middleware`s
  (`traefik.io/v1alpha1`) through `ExtensionRef` filters, which Traefik
  resolves through that provider. Its informers list every Traefik kind, so
  `traefik_crds` installs all ten (schemas left open: Traefik validates what it
  reads, and only gateway-config writes them here).
- Given `hop_port` (the front door), Traefik loads gateway-config's API key
  plugin (`gateway_config.plugin`, the Middleware of every keyed ModelService
  route) from `plugins-local/` under its working directory: run it there
  (`in_plugin_directory`, which installs the plugin's source first). Without
  that directory Traefik logs the plugin as not loaded and runs on; keyed
  routes then fail to build.
- Go's reverse proxy, not the fast proxy (`experimental.fastProxy`): with
  Traefik 3.7.15 the fast proxy ends a stream whose backend died mid-body as
  if it were complete, with `Internal Server Error` appended
  (traefik/traefik#13568), so a client could not tell a truncated answer.

`rbac_objects` grants its client-certificate user what the Gateway and CRD
providers read (the CRD provider's caches also list Nodes, and sync only when
they may) and the status it writes; `gateway_class` is the `traefik` GatewayClass a
Traefik install publishes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway_config import plugin

from modelplane_localfleet.rbac import bind_to_user

GATEWAY_CLASS = "traefik"
CONTROLLER_NAME = "traefik.io/gateway-controller"
ROLE_NAME = "modelplane-localfleet:traefik"
WEB_ENTRYPOINT = "web"
HOP_ENTRYPOINT = "hop"
HTTPS_ENTRYPOINT = "websecure"
HTTPS_PORT = 443
"""The control cluster's HTTPS entrypoint (gateway-config --https-port)."""
ADMIN_ENTRYPOINT = "admin"
BACKEND_IDLE_S = 4
RELAY_FLAGS = (f"--serversTransport.forwardingTimeouts.idleConnTimeout={BACKEND_IDLE_S}s",)
TRAEFIK_GROUP = "traefik.io"
TRAEFIK_KINDS = (
    "IngressRoute", "IngressRouteTCP", "IngressRouteUDP", "Middleware", "MiddlewareTCP",
    "ServersTransport", "ServersTransportTCP", "TLSOption", "TLSStore", "TraefikService",
)  # fmt: skip
"""The kinds Traefik 3.7's CRD provider watches (all must exist for its caches to sync)."""


def crd_files(entry: Path) -> list[Path]:
    """The standard channel CRDs, then the safe-upgrades admission policy that checks them."""
    files = sorted((entry / "crds").glob("*.yaml"))
    return sorted(files, key=lambda path: "_vap_" in path.name)


def gateway_class() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS},
        "spec": {"controllerName": CONTROLLER_NAME},
    }


def traefik_crds() -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of `TRAEFIK_KINDS` (namespaced, `v1alpha1`, open schema)."""
    crds = []
    for kind in TRAEFIK_KINDS:
        plural = f"{kind.lower()}s"
        version = {
            "name": "v1alpha1",
            "served": True,
            "storage": True,
            "schema": {
                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            },
        }
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{TRAEFIK_GROUP}"},
                "spec": {
                    "group": TRAEFIK_GROUP,
                    "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                              "singular": kind.lower()},
                    "scope": "Namespaced",
                    "versions": [version],
                },
            }
        )  # fmt: skip
    return crds


def _front_door_flags(address: str, hop_port: int, https_port: int) -> list[str]:
    entry = f"--entryPoints.{HOP_ENTRYPOINT}"
    https = f"--entryPoints.{HTTPS_ENTRYPOINT}"
    return [
        f"{entry}.address={address}:{hop_port}",
        f"{entry}.transport.respondingTimeouts.readTimeout=0s",
        f"{entry}.transport.respondingTimeouts.writeTimeout=0s",
        f"{entry}.forwardedHeaders.trustedIPs={address}",
        f"{https}.address={address}:{https_port}",
        f"{https}.transport.respondingTimeouts.readTimeout=0s",
        f"{https}.transport.respondingTimeouts.writeTimeout=0s",
        "--providers.kubernetesCRD=true",
        *plugin.static_flags(),
    ]


def in_plugin_directory(argv: list[str], workdir: Path) -> list[str]:
    """`argv` (a front door's command) run from `workdir`, where the API key plugin's source
    is installed first (Traefik reads local plugins under its working directory)."""
    plugin.install(workdir)
    return ["env", "-C", str(workdir), *argv]


def traefik_command(
    traefik: Path,
    *,
    address: str,
    web_port: int,
    admin_port: int,
    hop_port: int | None = None,
    https_port: int = HTTPS_PORT,
    log_level: str = "INFO",
) -> list[str]:
    hop = [] if hop_port is None else _front_door_flags(address, hop_port, https_port)
    return [
        str(traefik),
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        f"--log.level={log_level}",
        "--log.noColor=true",
        f"--entryPoints.{WEB_ENTRYPOINT}.address={address}:{web_port}",
        f"--entryPoints.{WEB_ENTRYPOINT}.transport.respondingTimeouts.readTimeout=0s",
        f"--entryPoints.{WEB_ENTRYPOINT}.transport.respondingTimeouts.writeTimeout=0s",
        *hop,
        f"--entryPoints.{ADMIN_ENTRYPOINT}.address={address}:{admin_port}",
        "--ping=true",
        f"--ping.entryPoint={ADMIN_ENTRYPOINT}",
        *RELAY_FLAGS,
        "--providers.kubernetesGateway=true",
        f"--providers.kubernetesGateway.statusAddress.ip={address}",
    ]


def traefik_env(kubeconfig: Path) -> dict[str, str]:
    """Out of a pod, Traefik's Kubernetes client reads the cluster from KUBECONFIG."""
    return {"KUBECONFIG": str(kubeconfig)}


def ping_url(address: str, admin_port: int) -> str:
    return f"http://{address}:{admin_port}/ping"


def rbac_objects(user: str) -> list[dict[str, Any]]:
    """A ClusterRole for Traefik's Gateway provider, bound to client-certificate `user`."""
    read = ["get", "list", "watch"]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": ROLE_NAME},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["namespaces", "services", "secrets", "configmaps", "nodes"],
                "verbs": read,
            },
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
            {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["*"], "verbs": read},
            {"apiGroups": [TRAEFIK_GROUP], "resources": ["*"], "verbs": read},
            {
                "apiGroups": ["gateway.networking.k8s.io"],
                "resources": ["*/status"],
                "verbs": ["update", "patch"],
            },
            {
                "apiGroups": ["", "events.k8s.io"],
                "resources": ["events"],
                "verbs": ["create", "patch"],
            },
        ],
    }
    return bind_to_user(role, user)
