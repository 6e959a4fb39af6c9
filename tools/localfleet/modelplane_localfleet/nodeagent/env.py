"""A container's environment and command line, resolved the way kubelet does (pure).

`resolve` builds the environment from `envFrom` (ConfigMaps and Secrets, with
prefixes), then `env` in order, where `value` may refer to variables defined
before it as `$(NAME)`; `valueFrom` reads `fieldRef` (name, namespace, uid,
labels, annotations, node, service account, pod and host IPs),
`resourceFieldRef`, `configMapKeyRef` and `secretKeyRef`. A reference to a
missing object or key that is not `optional` is a problem (kubelet's
CreateContainerConfigError) naming the field. `expand` applies `$(NAME)` to
command and args (`$$` escapes). The variables the LeaderWorkerSet webhook
injected are plain `value` entries in the pod, so they come through as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelplane.quantity import Quantity

Objects = Mapping[tuple[str, str], Mapping[str, str]]
"""(namespace, name) -> decoded data of the ConfigMaps (or Secrets) the pod refers to."""

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What kubelet knows about a pod besides its spec."""

    pod_ip: str
    host_ip: str
    node_name: str


@dataclass(slots=True)
class Resolved:
    env: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def expand(text: str, env: Mapping[str, str]) -> str:
    """`$(NAME)` replaced by its value when defined; `$$` becomes `$`; the rest stays."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def referenced(pod: Mapping[str, Any], kind: str) -> set[str]:
    """Names of the ConfigMaps (kind `configMap`) or Secrets (`secret`) the containers read."""
    names = set()
    for container in _containers(pod):
        for source in container.get("envFrom") or []:
            ref = source.get(f"{kind}Ref")
            if ref:
                names.add(ref["name"])
        for entry in container.get("env") or []:
            ref = (entry.get("valueFrom") or {}).get(f"{kind}KeyRef")
            if ref:
                names.add(ref["name"])
    return names


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def resolve(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    facts: PodFacts,
    config_maps: Objects,
    secrets: Objects,
) -> Resolved:
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace", "default")
    where = f"pod {namespace}/{meta.get('name')} container {container.get('name')}"
    out = Resolved()
    for i, source in enumerate(container.get("envFrom") or []):
        for kind, objects in (("configMap", config_maps), ("secret", secrets)):
            ref = source.get(f"{kind}Ref")
            if not ref:
                continue
            data = objects.get((namespace, ref["name"]))
            if data is None:
                if not ref.get("optional"):
                    out.problems.append(
                        f"{where}: envFrom[{i}].{kind}Ref: {kind} {ref['name']!r} not found"
                    )
                continue
            prefix = source.get("prefix", "")
            out.env.update({f"{prefix}{k}": v for k, v in data.items()})
    for i, entry in enumerate(container.get("env") or []):
        name = entry["name"]
        if "valueFrom" not in entry:
            out.env[name] = expand(entry.get("value", ""), out.env)
            continue
        value, problem = _value_from(
            entry["valueFrom"], pod, container, facts, namespace, config_maps, secrets
        )
        if problem:
            out.problems.append(f"{where}: env[{i}] ({name}).valueFrom.{problem}")
        elif value is not None:
            out.env[name] = value
    return out


def _value_from(
    source: Mapping[str, Any],
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    facts: PodFacts,
    namespace: str,
    config_maps: Objects,
    secrets: Objects,
) -> tuple[str | None, str | None]:
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        value = field_value(pod, path, facts)
        if value is None:
            return None, f"fieldRef: unsupported fieldPath {path!r}"
        return value, None
    if "resourceFieldRef" in source:
        return resource_value(source["resourceFieldRef"], container), None
    for kind, objects in (("configMap", config_maps), ("secret", secrets)):
        ref = source.get(f"{kind}KeyRef")
        if not ref:
            continue
        data = objects.get((namespace, ref["name"]))
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                return None, None
            missing = (
                f"{kind} {ref['name']!r} not found"
                if data is None
                else (f"key {ref['key']!r} not in {kind} {ref['name']!r}")
            )
            return None, f"{kind}KeyRef: {missing}"
        return data[ref["key"]], None
    return None, "has no source kubelet understands"


def field_value(pod: Mapping[str, Any], path: str, facts: PodFacts) -> str | None:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or facts.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": facts.pod_ip,
        "status.podIPs": facts.pod_ip,
        "status.hostIP": facts.host_ip,
        "status.hostIPs": facts.host_ip,
    }
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    return None


def resource_value(ref: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """limits.X / requests.X of the container, divided by the divisor and rounded up."""
    kind, _, resource = ref["resource"].partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(resource) or (resources.get("limits") or {}).get(resource)
    if raw is None:
        return "0"
    divisor = Quantity.parse(str(ref.get("divisor", "1")))
    return str(math.ceil(Quantity.parse(str(raw)).value / divisor.value))
