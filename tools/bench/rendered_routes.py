"""gateway-config's rendered objects as Traefik file-provider configuration (for benchmarks).

`file_config` reads what `gateway_config.decide` asks the cluster for
(HTTPRoutes, Services, EndpointSlices, BackendTLSPolicies and their CA bundle
ConfigMaps) and writes the routers, services, middlewares and server
transports Traefik's Gateway provider would make of them, so a benchmark can
run the rendered front door (the h2c hop included) on loopback without
Kubernetes:

- an HTTPRoute's parent listener (`sectionName`) picks the entrypoint
  (`entrypoints`), its rule's `PathPrefix` the router rule;
- its backendRef's Service and EndpointSlice give the server URL: scheme
  `h2c` for `appProtocol: kubernetes.io/h2c`, `https` for `https`, else
  `http`; each address through `resolve` (names to loopback, as a resolver
  would);
- the backendRef's `URLRewrite` gives a prefix replacement and, with
  `hostname`, the Host header;
- a BackendTLSPolicy on the Service gives a server transport with that host
  name as SNI and the CAs of its ConfigMap (written under `work`);
- a rule's `ExtensionRef` filter naming a rendered Traefik `Middleware` (the
  retry) gives that middleware, its spec as is (the CRD's fields are the file
  provider's), first in the router's chain.

Only what gateway-config renders is read: one rule per route and one
backendRef per rule (a ModelService with one endpoint); anything else raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Obj = Mapping[str, Any]
H2C = "kubernetes.io/h2c"


def _key(obj: Obj) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def _server(service: Obj, slice_: Obj, resolve: Mapping[str, str]) -> str:
    port = slice_["ports"][0]
    protocol = port.get("appProtocol") or "http"
    scheme = "h2c" if protocol == H2C else "https" if protocol == "https" else "http"
    addresses = [a for e in slice_["endpoints"] for a in e["addresses"]]
    if len(addresses) != 1:
        name = service["metadata"]["name"]
        raise ValueError(f"Service {name} has {len(addresses)} addresses, expected 1")
    return f"{scheme}://{resolve.get(addresses[0], addresses[0])}:{port['port']}"


def file_config(
    objects: Sequence[Obj],
    entrypoints: Mapping[str, str],
    resolve: Mapping[str, str],
    work: Path,
) -> dict[str, Any]:
    """Traefik dynamic configuration (`{"http": ...}`) equivalent to the rendered `objects`."""
    by_kind: dict[str, dict[tuple[str, str], Obj]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[_key(obj)] = obj
    slices = {
        (ns, s["metadata"]["labels"]["kubernetes.io/service-name"]): s
        for (ns, _), s in by_kind.get("EndpointSlice", {}).items()
    }
    policies = {
        (ns, ref["name"]): p
        for (ns, _), p in by_kind.get("BackendTLSPolicy", {}).items()
        for ref in p["spec"]["targetRefs"]
    }
    http: dict[str, Any] = {"routers": {}, "middlewares": {}, "services": {}}
    transports: dict[str, Any] = {}
    for (ns, name), route in sorted(by_kind.get("HTTPRoute", {}).items()):
        (rule,) = route["spec"]["rules"]
        (ref,) = rule["backendRefs"]
        (match,) = rule["matches"]
        prefix = match["path"]["value"]
        listener = route["spec"]["parentRefs"][0]["sectionName"]
        router = f"{ns}-{name}"
        middlewares = []
        for flt in rule.get("filters") or []:
            ref_name = flt["extensionRef"]["name"]
            http["middlewares"][f"{router}-{ref_name}"] = dict(
                by_kind["Middleware"][(ns, ref_name)]["spec"]
            )
            middlewares.append(f"{router}-{ref_name}")
        for flt in ref.get("filters") or []:
            rewrite = flt["urlRewrite"]
            replace = rewrite["path"]["replacePrefixMatch"]
            regex = {"regex": f"^{prefix}(.*)", "replacement": f"{replace}$1"}
            http["middlewares"][f"{router}-path"] = {"replacePathRegex": regex}
            middlewares.append(f"{router}-path")
            if "hostname" in rewrite:
                headers = {"customRequestHeaders": {"Host": rewrite["hostname"]}}
                http["middlewares"][f"{router}-host"] = {"headers": headers}
                middlewares.append(f"{router}-host")
        target = (ns, ref["name"])
        balancer: dict[str, Any] = {
            "servers": [{"url": _server(by_kind["Service"][target], slices[target], resolve)}]
        }
        policy = policies.get(target)
        if policy is not None:
            validation = policy["spec"]["validation"]
            transport: dict[str, Any] = {"serverName": validation["hostname"]}
            for ca in validation.get("caCertificateRefs") or []:
                bundle = by_kind["ConfigMap"][(ns, ca["name"])]["data"]["ca.crt"]
                path = work / f"{ns}-{ca['name']}.crt"
                path.write_text(bundle)
                transport["rootCAs"] = [str(path)]
            transports[router] = transport
            balancer["serversTransport"] = router
        http["services"][router] = {"loadBalancer": balancer}
        http["routers"][router] = {
            "rule": f"PathPrefix(`{prefix}`)",
            "service": router,
            "middlewares": middlewares,
            "entryPoints": [entrypoints[listener]],
        }
    if transports:
        http["serversTransports"] = transports
    return {"http": http}
