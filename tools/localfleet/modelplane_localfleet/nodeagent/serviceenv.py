"""Services as pods see them: kubelet's service environment variables and cluster names (pure).

`service_env` gives a container what kubelet gives it: for `default/kubernetes`
always, and for every Service of the pod's namespace while
`enableServiceLinks` is true (the default), `<NAME>_SERVICE_HOST`,
`<NAME>_SERVICE_PORT` (the first port), `<NAME>_SERVICE_PORT_<PORTNAME>`,
`<NAME>_PORT` and `<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]`, names
upper-cased with `-` as `_`. Services without a ClusterIP (headless,
ExternalName) give none.

`host_names` is the fallback for cluster DNS (the node agent's hosts file, not
CoreDNS): each Service with a ClusterIP as `<svc>.<ns>`, `<svc>.<ns>.svc` and
`<svc>.<ns>.svc.cluster.local`.

Where no kube-proxy serves the cluster's ClusterIPs (inference clusters, see
`servicenet`), `direct_kubernetes` stands in for `default/kubernetes`: the
apiserver at its own address and port, which its serving certificate names.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

Json = dict[str, Any]
DOMAIN = "cluster.local"
MASTER_NAMESPACE = "default"


def _cluster_ip(service: Mapping[str, Any]) -> str | None:
    ip = (service.get("spec") or {}).get("clusterIP")
    return ip if ip and ip != "None" else None


def _variables(service: Mapping[str, Any]) -> dict[str, str]:
    ip = _cluster_ip(service)
    ports = (service.get("spec") or {}).get("ports") or []
    if ip is None or not ports:
        return {}
    prefix = service["metadata"]["name"].upper().replace("-", "_")
    first = ports[0]
    out = {
        f"{prefix}_SERVICE_HOST": ip,
        f"{prefix}_SERVICE_PORT": str(first["port"]),
        f"{prefix}_PORT": f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}",
    }
    for port in ports:
        protocol = port.get("protocol", "TCP")
        if port.get("name"):
            name = port["name"].upper().replace("-", "_")
            out[f"{prefix}_SERVICE_PORT_{name}"] = str(port["port"])
        base = f"{prefix}_PORT_{port['port']}_{protocol}"
        out[base] = f"{protocol.lower()}://{ip}:{port['port']}"
        out[f"{base}_PROTO"] = protocol.lower()
        out[f"{base}_PORT"] = str(port["port"])
        out[f"{base}_ADDR"] = ip
    return out


def _is_kubernetes(service: Mapping[str, Any]) -> bool:
    meta = service["metadata"]
    return bool(meta["name"] == "kubernetes" and meta.get("namespace") == MASTER_NAMESPACE)


def service_env(services: Iterable[Mapping[str, Any]], pod: Mapping[str, Any]) -> dict[str, str]:
    """The service variables of a container of `pod`, by kubelet's rules."""
    namespace = pod["metadata"].get("namespace", MASTER_NAMESPACE)
    links = (pod.get("spec") or {}).get("enableServiceLinks", True)
    out: dict[str, str] = {}
    kubernetes: dict[str, str] = {}
    for service in services:
        if _is_kubernetes(service):
            kubernetes = _variables(service)
        elif links and service["metadata"].get("namespace") == namespace:
            out.update(_variables(service))
    return {**out, **kubernetes}


def direct_kubernetes(service: Mapping[str, Any], apiserver: str) -> Json:
    """`service` (default/kubernetes) pointing straight at `apiserver` (`address:port`)."""
    address, _, port = apiserver.rpartition(":")
    out = copy.deepcopy(dict(service))
    out["spec"]["clusterIP"] = address
    out["spec"]["ports"] = [{**p, "port": int(port)} for p in out["spec"].get("ports") or []]
    return out


def host_names(services: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """Hosts-file lines (address first) for every Service with a ClusterIP."""
    lines = []
    for service in services:
        ip = _cluster_ip(service)
        if ip is None:
            continue
        short = f"{service['metadata']['name']}.{service['metadata']['namespace']}"
        lines.append([ip, short, f"{short}.svc", f"{short}.svc.{DOMAIN}"])
    return lines


def as_seen(services: Iterable[Mapping[str, Any]], apiserver: str | None) -> list[Json]:
    """The Services as the cluster's pods reach them: with `apiserver` set (no kube-proxy),
    `default/kubernetes` points at it."""
    out = []
    for service in services:
        if apiserver and _is_kubernetes(service):
            out.append(direct_kubernetes(service, apiserver))
        else:
            out.append(dict(service))
    return out
