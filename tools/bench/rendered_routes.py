"""gateway-config's rendered objects as Traefik file-provider configuration (for benchmarks).

`file_config` reads what `gateway_config.decide` asks the cluster for
(HTTPRoutes, Services, EndpointSlices, BackendTLSPolicies and their CA bundle
ConfigMaps) and writes the routers, services, middlewares and server
transports Traefik's Gateway provider would make of them, so a benchmark can
run the rendered front door (the h2c hop included) on loopback without
Kubernetes:

- an HTTPRoute's parent listener (`sectionName`) picks the entrypoint
  (`entrypoints`), its rule's `PathPrefix` (and `Exact` header matches) the
  router rule;
- its backendRef's Service and EndpointSlice give the server URL: scheme
  `h2c` for `appProtocol: kubernetes.io/h2c`, `https` for `https`, else
  `http`; each address through `resolve` (names to loopback, as a resolver
  would);
- the backendRef's `URLRewrite` gives a prefix replacement and, with
  `hostname`, the Host header;
- a BackendTLSPolicy on the Service gives a server transport with that host
  name as SNI and the CAs of its ConfigMap (written under `work`);
- a rule's `ExtensionRef` filter naming a rendered Traefik `Middleware` (the
  retry, an endpoint's bound, the API key check) gives that middleware, its spec
  as is (the CRD's fields are the file provider's), in the router's chain in
  filter order; a `RequestHeaderModifier` filter's `set` and `remove` give a
  `headers` middleware (a removed header set to "", as Traefik removes it);
- a backendRef to a rendered `TraefikService` (a failover link,
  `gateway_config.failover`) gives a `failover` service of the same spec whose
  `service` and `fallback` are the link's LoadBalancerSpecs: a Service (its
  server as above, scheme as the spec says, its Middlewares as service
  middlewares) or the next link.

- a rule with several backendRefs (weights, `gateway_config.weights`) gives a
  `weighted` service over one load balancer per backendRef, its filters as that
  service's middlewares.

Only what gateway-config renders is read: one rule per route; anything else
raises.
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

    def middleware(ns: str, router: str, flt: Obj) -> str:
        """The middleware of an ExtensionRef or RequestHeaderModifier filter, by name."""
        if flt["type"] == "RequestHeaderModifier":
            change = flt["requestHeaderModifier"]
            headers = {h["name"]: h["value"] for h in change.get("set", [])}
            headers.update({name: "" for name in change.get("remove", [])})  # "": removed
            http["middlewares"][f"{router}-headers"] = {
                "headers": {"customRequestHeaders": headers}
            }
            return f"{router}-headers"
        ref_name = flt["extensionRef"]["name"]
        spec = by_kind["Middleware"][(ns, ref_name)]["spec"]
        http["middlewares"][f"{router}-{ref_name}"] = dict(spec)
        return f"{router}-{ref_name}"

    def link(ns: str, name: str) -> str:
        """The failover service of TraefikService `name` (and of the links after it)."""
        spec = dict(by_kind["TraefikService"][(ns, name)]["spec"]["failover"])
        for side in ("service", "fallback"):
            target = spec[side]
            if target["kind"] == "TraefikService":
                spec[side] = link(ns, target["name"])
                continue
            key = (ns, target["name"])
            server = _server(by_kind["Service"][key], slices[key], resolve)
            scheme = target.get("scheme")
            if scheme:
                server = f"{scheme}://{server.split('://', 1)[1]}"
            # (named apart from the route of the same name, as Traefik's providers do)
            own = f"{ns}-{target['name']}-link"
            chain = [middleware(ns, own, {"type": "ExtensionRef", "extensionRef": m})
                     for m in target.get("middlewares") or []]  # fmt: skip
            http["services"][own] = {
                "loadBalancer": {"servers": [{"url": server}]},
                "middlewares": chain,
            }
            spec[side] = own
        http["services"][f"{ns}-{name}"] = {"failover": spec}
        return f"{ns}-{name}"

    def backend(ns: str, router: str, prefix: str, ref: Obj) -> tuple[dict[str, Any], list[str]]:
        """A backendRef's load balancer and the middlewares of its filters."""
        chain = []
        for flt in ref.get("filters") or []:
            if flt["type"] == "ExtensionRef":
                chain.append(middleware(ns, router, flt))
                continue
            rewrite = flt["urlRewrite"]
            replace = rewrite["path"]["replacePrefixMatch"]
            regex = {"regex": f"^{prefix}(.*)", "replacement": f"{replace}$1"}
            http["middlewares"][f"{router}-path"] = {"replacePathRegex": regex}
            chain.append(f"{router}-path")
            if "hostname" in rewrite:
                headers = {"customRequestHeaders": {"Host": rewrite["hostname"]}}
                http["middlewares"][f"{router}-host"] = {"headers": headers}
                chain.append(f"{router}-host")
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
        return balancer, chain

    for (ns, name), route in sorted(by_kind.get("HTTPRoute", {}).items()):
        (rule,) = route["spec"]["rules"]
        refs = rule["backendRefs"]
        (match,) = rule["matches"]
        prefix = match["path"]["value"]
        matcher = " && ".join(
            [f"PathPrefix(`{prefix}`)"]
            + [f"Header(`{h['name']}`, `{h['value']}`)" for h in match.get("headers") or []]
        )
        listener = route["spec"]["parentRefs"][0]["sectionName"]
        router = f"{ns}-{name}"
        middlewares = [middleware(ns, router, flt) for flt in rule.get("filters") or []]
        service = router
        if len(refs) == 1 and refs[0].get("kind") == "TraefikService":
            service = link(ns, refs[0]["name"])
        elif len(refs) == 1:
            balancer, chain = backend(ns, router, prefix, refs[0])
            middlewares += chain
            http["services"][router] = {"loadBalancer": balancer}
        else:  # weighted: each backendRef a service of its own, with its filters
            shares = []
            for i, ref in enumerate(refs):
                child = f"{router}-{i}"
                balancer, chain = backend(ns, child, prefix, ref)
                http["services"][child] = {"loadBalancer": balancer, "middlewares": chain}
                shares.append({"name": child, "weight": ref.get("weight", 1)})
            http["services"][router] = {"weighted": {"services": shares}}
        http["routers"][router] = {
            "rule": matcher,
            "service": service,
            "middlewares": middlewares,
            "entryPoints": [entrypoints[listener]],
        }
    if transports:
        http["serversTransports"] = transports
    return {"http": http}
