"""The objects one ModelReplica needs on its inference cluster, rendered from the replica alone.

`render` is pure: it takes a ModelReplica as the API returns it (a dict) and
returns, in apply order (and, reversed, teardown order):

1. the Namespace the replica lives in (shared by every replica of that
   namespace, so it carries only the managed-by label and is never torn down);
2. one ResourceClaimTemplate (`resource.k8s.io/v1`) per member that claims
   devices, its requests mirroring the member's `deviceRequests`; its spec is
   immutable, so its name ends in a hash of the requests and changed requests
   make a new one (endpoint-manager prunes the old one by `managed_labels`);
3. per engine, the workload: a Deployment of `copies` pods for a Standalone
   engine, or a LeaderWorkerSet of `copies` groups of `1 + worker.nodes` pods
   for a Leader/Worker gang;
4. a ClusterIP Service named after the replica, port 80 to the engine port of
   the pods that serve requests (Standalone pods and gang leaders);
5. an HTTPRoute on the cluster's serving Gateway (`GATEWAY`) sending
   `/<namespace>/<replica>/...` to that Service with the prefix rewritten to `/`.

A `PrefillDecode` replica is rendered by `endpoint_manager.prefilldecode` (its
phase engines as above, a Service per phase, the prefill/decode router in front).

The member's pod template passes through as written; the platform adds only
what it must: its labels (the user's stay), the pool pin
`modelplane.ai/pool: <pool>` (merged into any nodeSelector), the device claim
(`spec.resourceClaims` plus `resources.claims` on the engine container), an
HTTP readiness probe on `/health` at the engine port when the engine
container of a serving pod has none, with `spec.modelCacheRef` the ModelCache's claim
(`naming.cache_claim_name`) mounted read-only at `/mnt/models` in every container of
every pod (gangs included), and in gangs `MODELPLANE_LEADER_ADDRESS`
(from the `LWS_LEADER_ADDRESS` that LeaderWorkerSet injects, with
`LWS_GROUP_SIZE` and the rank `LWS_WORKER_INDEX`, 0 for the leader). The engine
container is the one named `engine`, else the first; its port is `engine_port`'s:
the first `containerPort`, else the last `--port N`/`--port=N` of its command line
(inside a `sh -c` script too), else 8000.

Guarantees: same replica, same output (names derive from the replica, the
engine and the role, shortened with a stable hash to fit Kubernetes limits;
label values fit 63 characters); the input is never mutated; every namespaced
object carries `managed_labels(replica)`, by which endpoint-manager lists and
prunes. What cannot be rendered raises `UnsupportedError` naming the replica and
the field.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane import naming
from modelplane.wellknown import INFERENCE_GATEWAY, MANAGED_BY, Json

Obj = Mapping[str, Any]

GATEWAY = INFERENCE_GATEWAY
"""(namespace, name) of the serving stack's Gateway on every inference cluster."""

MANAGER = "modelplane-endpoint-manager"
REPLICA_LABEL = "modelplane.ai/replica"
ENGINE_LABEL = "modelplane.ai/engine"
ROLE_LABEL = "modelplane.ai/role"
SERVING_LABEL = "modelplane.ai/serving"
"""On pods that take requests (Standalone pods, gang leaders): the Service selects it."""

ENGINE_CONTAINER = "engine"
DEFAULT_ENGINE_PORT = 8000
DEFAULT_ROUTER_IMAGE = "modelplane/modelplane:latest"
"""The image the P/D router runs from (endpoint-manager's `--router-image` overrides it)."""
SERVICE_PORT = 80
HEALTH_PATH = "/health"
CLAIM_NAME = "modelplane-devices"
LEADER_ADDRESS_ENV = "MODELPLANE_LEADER_ADDRESS"
LWS_LEADER_ADDRESS_ENV = "LWS_LEADER_ADDRESS"
# A LeaderWorkerSet's worker StatefulSet is `<lws>-<group>` and its pods carry
# `controller-revision-hash: <lws>-<group>-<10 chars>`, a label value (63 at
# most): 63 - 11 - 5 (group index up to 1023) leaves 47.
LWS_NAME_MAX = 47

RCT_API = "resource.k8s.io/v1"
LWS_API = "leaderworkerset.x-k8s.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"
WORKLOAD_KINDS = frozenset({("apps/v1", "Deployment"), (LWS_API, "LeaderWorkerSet")})
"""(apiVersion, kind) of the objects that run pods: their status says whether pods are ready."""
RBAC_API = "rbac.authorization.k8s.io/v1"
OWNED_KINDS = (
    (GATEWAY_API, "HTTPRoute"),
    ("v1", "Service"),
    (LWS_API, "LeaderWorkerSet"),
    ("apps/v1", "Deployment"),
    (RBAC_API, "RoleBinding"),
    (RBAC_API, "Role"),
    ("v1", "ServiceAccount"),
    (RCT_API, "ResourceClaimTemplate"),
)
"""(apiVersion, kind) of what a replica may own on its cluster (labelled `managed_labels`),
in teardown order: the route first, so the gateway stops sending before the pods go. The
Namespace is shared between replicas and never torn down."""
_READINESS = {"periodSeconds": 2, "failureThreshold": 3}


@dataclass(frozen=True, slots=True)
class Rendered:
    """What `render` returns.

    objects: every object to server-side apply on the replica's cluster, in apply order;
    serving_service: the name of the Service in front of the serving pods;
    path: the replica's path prefix on its cluster's gateway, `/<namespace>/<replica>/`;
    one_ready: (kind, name) of the workloads that serve once one of their pods is ready
    (a P/D replica's phase engines); every other workload needs all its pods ready.
    """

    objects: tuple[Json, ...]
    serving_service: str
    path: str
    one_ready: frozenset[tuple[str, str]] = frozenset()


class UnsupportedError(ValueError):
    """The replica asks for something the platform cannot run (yet).

    The message reads `ModelReplica <ns>/<name> <field>: <why>`; `field` is the path.
    """

    def __init__(self, replica: str, field: str, why: str) -> None:
        super().__init__(f"ModelReplica {replica} {field}: {why}")
        self.field = field


def managed_labels(replica: Obj) -> dict[str, str]:
    """The labels every rendered namespaced object carries: managed-by, the replica and
    (when known) its ModelDeployment. Values are shortened to fit a label value."""
    meta, spec = replica["metadata"], replica.get("spec") or {}
    labels = {MANAGED_BY: MANAGER, REPLICA_LABEL: naming.shorten(meta["name"])}
    deployment = spec.get("deploymentName") or (meta.get("labels") or {}).get(
        naming.DEPLOYMENT_LABEL
    )
    if deployment:
        labels[naming.DEPLOYMENT_LABEL] = naming.shorten(str(deployment))
    return labels


def object_name(*parts: str, limit: int = naming.DNS_LABEL_MAX) -> str:
    """`parts` joined by `-` as a DNS-1035 label of at most `limit` characters: dots become
    dashes, a name not starting with a letter gets `m-` in front, a long one is shortened
    with a stable hash (`naming.shorten`)."""
    name = "-".join(parts).replace(".", "-")
    if not name[:1].isalpha():
        name = f"m-{name}"
    return naming.shorten(name, limit)


def render(
    replica: Obj, router_image: str = DEFAULT_ROUTER_IMAGE, scheduler_name: str | None = None
) -> Rendered:
    """The objects `replica` needs on its cluster, in apply order (see the module docstring);
    `router_image` runs a PrefillDecode replica's router; with `scheduler_name`, every pod
    names that scheduler unless its template names one.

    Raises `UnsupportedError` for an unknown serving mode, an engine
    that is neither one Standalone member nor one Leader plus one Worker member, a member
    without a pool, container or device class, and serving engines on different ports.
    """
    return _Renderer(replica, router_image, scheduler_name).render()


@dataclass(frozen=True, slots=True)
class _Pod:
    """One member's pod template with the platform's additions, and its claim template."""

    template: Json
    claim_template: Json | None
    port: int
    at: str  # the member's field path


class _Renderer:
    def __init__(
        self,
        replica: Obj,
        router_image: str = DEFAULT_ROUTER_IMAGE,
        scheduler_name: str | None = None,
    ) -> None:
        meta = replica["metadata"]
        self.scheduler_name = scheduler_name
        self.replica = replica
        self.router_image = router_image
        self.name: str = meta["name"]
        self.namespace: str = meta.get("namespace") or "default"
        self.labels = managed_labels(replica)

    def error(self, field: str, why: str) -> UnsupportedError:
        return UnsupportedError(f"{self.namespace}/{self.name}", field, why)

    def meta(self, name: str, extra: Mapping[str, str] | None = None) -> Json:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {**self.labels, **(extra or {})},
        }

    def render(self) -> Rendered:
        spec = self.replica.get("spec") or {}
        mode = (spec.get("serving") or {}).get("mode", "Unified")
        if mode not in ("Unified", "PrefillDecode"):
            raise self.error(
                "spec.serving.mode",
                f"{mode} serving is not supported; use Unified or PrefillDecode",
            )
        engines: Sequence[Obj] = spec.get("engines") or ()
        if not engines:
            raise self.error("spec.engines", "a replica needs at least one engine")
        if mode == "PrefillDecode":
            from endpoint_manager import prefilldecode  # it builds on this module

            return prefilldecode.render(self, engines)
        claims: list[Json] = []
        workloads: list[Json] = []
        port: tuple[int, str] | None = None
        for i, engine in enumerate(engines):
            at = f"spec.engines[{i}]"
            pods, workload = self.engine(engine, at)
            claims += [p.claim_template for p in pods if p.claim_template is not None]
            workloads.append(workload)
            if port is not None and pods[0].port != port[0]:
                raise self.error(
                    f"{pods[0].at}.template.spec.containers",
                    f"the engine serves on port {pods[0].port} but {port[1]} serves on "
                    f"{port[0]}; every engine of a Unified replica serves on one port",
                )
            port = port or (pods[0].port, f"engine {engine['name']}")
        assert port is not None
        service = object_name(self.name)
        path = f"/{self.namespace}/{self.name}/"
        objects = (
            self.namespace_object(),
            *claims,
            *workloads,
            self.service(service, port[0]),
            self.route(service, path),
        )
        return Rendered(objects=objects, serving_service=service, path=path)

    def namespace_object(self) -> Json:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": {MANAGED_BY: MANAGER}},
        }

    def engine(self, engine: Obj, at: str) -> tuple[list[_Pod], Json]:
        """The engine's pods (the serving one first) and its workload."""
        members: Sequence[Obj] = engine.get("members") or ()
        roles = [m.get("role", "Standalone") for m in members]
        copies = int(engine.get("copies", 1))
        name: str = engine["name"]
        if roles == ["Standalone"]:
            pod = self.pod(engine, members[0], f"{at}.members[0]", "Standalone", gang=False)
            return [pod], self.deployment(name, copies, pod)
        if sorted(roles) == ["Leader", "Worker"]:
            lead, work = roles.index("Leader"), roles.index("Worker")
            nodes = (members[work].get("worker") or {}).get("nodes")
            if not isinstance(nodes, int) or nodes < 1:
                raise self.error(
                    f"{at}.members[{work}].worker.nodes", "a Worker member needs worker.nodes >= 1"
                )
            leader = self.pod(engine, members[lead], f"{at}.members[{lead}]", "Leader", gang=True)
            worker = self.pod(engine, members[work], f"{at}.members[{work}]", "Worker", gang=True)
            return [leader, worker], self.leaderworkerset(name, copies, 1 + nodes, leader, worker)
        raise self.error(
            f"{at}.members",
            f"roles {roles} are not supported: an engine is one Standalone member, or one "
            "Leader and one Worker member (a LeaderWorkerSet has a single worker template)",
        )

    def pod(self, engine: Obj, member: Obj, at: str, role: str, *, gang: bool) -> _Pod:
        pool = member.get("nodePoolName") or engine.get("nodePoolName")
        if not pool:
            raise self.error(f"{at}.nodePoolName", "the member is not pinned to a node pool")
        written: Json = copy.deepcopy(dict(member.get("template") or {}))
        metadata: Json = written.pop("metadata", None) or {}
        spec: Json = written.pop("spec", None) or {}
        template: Json = {"metadata": metadata, "spec": spec, **written}
        containers = spec.get("containers")
        if not containers:
            raise self.error(f"{at}.template.spec.containers", "the pod template has no container")
        index = next((k for k, c in enumerate(containers) if c.get("name") == ENGINE_CONTAINER), 0)
        container = containers[index]
        port = self.engine_port(container, f"{at}.template.spec.containers[{index}]", engine)
        serving = role != "Worker"

        labels = {**self.labels, ENGINE_LABEL: engine["name"], ROLE_LABEL: role}
        if serving:
            labels[SERVING_LABEL] = "true"
        metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), naming.POOL_LABEL: pool}
        if self.scheduler_name:
            spec.setdefault("schedulerName", self.scheduler_name)

        claim = None
        requests: Sequence[Obj] = member.get("deviceRequests") or ()
        if requests:
            suffix = () if role == "Standalone" else (role.lower(),)
            claim = self.claim_template(
                (self.name, engine["name"], *suffix), requests, f"{at}.deviceRequests"
            )
            _claim_devices(spec, container, claim["metadata"]["name"])

        if serving and "readinessProbe" not in container:
            container["readinessProbe"] = {
                "httpGet": {"path": HEALTH_PATH, "port": port},
                **_READINESS,
            }
        if gang:
            _add_leader_address(spec)
        cache = (self.replica.get("spec") or {}).get("modelCacheRef") or {}
        if cache.get("name"):
            _mount_cache(spec, naming.cache_claim_name(str(cache["name"])))
        return _Pod(template=template, claim_template=claim, port=port, at=at)

    def engine_port(self, container: Obj, at: str, engine: Obj) -> int:
        """Where the engine container listens (`engine_port`); a `--port` value that is not
        a port number raises `UnsupportedError` naming the engine and the field."""
        try:
            return engine_port(container)
        except PortFlagError as error:
            raise self.error(
                f"{at}.{error.field}",
                f"engine {engine['name']}: --port {error.value!r} is not a port number "
                "(1-65535); write the number, or declare it as the container's containerPort",
            ) from None

    def claim_template(self, parts: Sequence[str], requests: Sequence[Obj], at: str) -> Json:
        """Named after its owner and a hash of its requests: a ResourceClaimTemplate's spec
        is immutable, so changed requests make a new one (the old one is pruned)."""
        rendered = []
        for j, request in enumerate(requests):
            device_class = request.get("deviceClassName")
            if not device_class:
                raise self.error(
                    f"{at}[{j}].deviceClassName", "a device request needs its DeviceClass"
                )
            exactly: Json = {
                "deviceClassName": device_class,
                "allocationMode": "ExactCount",
                "count": int(request.get("count", 1)),
            }
            selectors = [{"cel": {"expression": s["cel"]}} for s in request.get("selectors") or ()]
            if selectors:
                exactly["selectors"] = selectors
            rendered.append({"name": request["name"], "exactly": exactly})
        digest = hashlib.sha256(json.dumps(rendered, sort_keys=True).encode()).hexdigest()
        return {
            "apiVersion": RCT_API,
            "kind": "ResourceClaimTemplate",
            "metadata": self.meta(object_name(*parts, digest[:8])),
            "spec": {
                "metadata": {"labels": dict(self.labels)},
                "spec": {"devices": {"requests": rendered}},
            },
        }

    def deployment(self, engine: str, copies: int, pod: _Pod) -> Json:
        selector = {REPLICA_LABEL: self.labels[REPLICA_LABEL], ENGINE_LABEL: engine}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.meta(object_name(self.name, engine), {ENGINE_LABEL: engine}),
            "spec": {
                "replicas": copies,
                "selector": {"matchLabels": selector},
                # A pool holds exactly the nodes the scheduler charged: replace pods one at a
                # time instead of surging into devices that do not exist.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                },
                "template": pod.template,
            },
        }

    def leaderworkerset(
        self, engine: str, copies: int, size: int, leader: _Pod, worker: _Pod
    ) -> Json:
        name = object_name(self.name, engine, limit=LWS_NAME_MAX)
        return {
            "apiVersion": LWS_API,
            "kind": "LeaderWorkerSet",
            "metadata": self.meta(name, {ENGINE_LABEL: engine}),
            "spec": {
                "replicas": copies,
                "leaderWorkerTemplate": {
                    "size": size,
                    "leaderTemplate": leader.template,
                    "workerTemplate": worker.template,
                },
            },
        }

    def service(self, name: str, port: int, selector: Mapping[str, str] | None = None) -> Json:
        """A ClusterIP Service, port 80 (`http`) to `port` of the pods of `selector` (default:
        the replica's serving pods)."""
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(name),
            "spec": {
                "type": "ClusterIP",
                "selector": {
                    REPLICA_LABEL: self.labels[REPLICA_LABEL],
                    **(selector or {SERVING_LABEL: "true"}),
                },
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": SERVICE_PORT, "targetPort": port}
                ],
            },
        }

    def route(self, service: str, path: str) -> Json:
        gateway_namespace, gateway = GATEWAY
        return {
            "apiVersion": GATEWAY_API,
            "kind": "HTTPRoute",
            "metadata": self.meta(object_name(self.name)),
            "spec": {
                "parentRefs": [
                    {
                        "group": "gateway.networking.k8s.io",
                        "kind": "Gateway",
                        "namespace": gateway_namespace,
                        "name": gateway,
                    }
                ],
                "rules": [
                    {
                        # Gateway API prefixes match whole path elements, so `/ns/r` is the
                        # prefix `/ns/r/` without the ambiguity of a trailing slash.
                        "matches": [{"path": {"type": "PathPrefix", "value": path.rstrip("/")}}],
                        "filters": [
                            {
                                "type": "URLRewrite",
                                "urlRewrite": {
                                    "path": {
                                        "type": "ReplacePrefixMatch",
                                        "replacePrefixMatch": "/",
                                    }
                                },
                            }
                        ],
                        "backendRefs": [{"kind": "Service", "name": service, "port": SERVICE_PORT}],
                    }
                ],
            },
        }


PORT_FLAG = "--port"
SHELLS = frozenset({"sh", "bash", "dash", "ash"})
"""Commands (by base name) whose `-c SCRIPT` is a script: its words are read for `--port`."""


class PortFlagError(ValueError):
    """A `--port` whose value is not a port number; `field` is where it is in the container
    (`args[3]`, `command[2]`), `value` what it says."""

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"{field}: --port {value!r} is not a port number")
        self.field = field
        self.value = value


def engine_port(container: Obj) -> int:
    """The port an engine container serves on, the one rule for every engine and probe:

    1. its first `ports[].containerPort`, when it declares one;
    2. else the last `--port N` or `--port=N` of its command line (`command` then `args`,
       as vLLM's and SGLang's argparse take the last); when that line is a shell's `-c
       SCRIPT` (`sh`, `bash`, ...), the words of the script, every command in it;
    3. else `DEFAULT_ENGINE_PORT` (8000).

    A `--port` value that is not an integer 1-65535 (`$(PORT)`, `$PORT`, `http`, none)
    raises `PortFlagError`: Kubernetes' `$(VAR)` and the shell's variables are not read.
    """
    ports = container.get("ports") or []
    if ports:
        return int(ports[0]["containerPort"])
    found: tuple[str, str] | None = None
    words = _command_words(container)
    for k, (word, field) in enumerate(words):
        if word == PORT_FLAG:  # the value is the next word, where the error points
            found = words[k + 1] if k + 1 < len(words) else ("", field)
        elif word.startswith(PORT_FLAG + "="):
            found = (word[len(PORT_FLAG) + 1 :], field)
    if found is None:
        return DEFAULT_ENGINE_PORT
    value, field = found
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
        raise PortFlagError(field, value)
    return int(value)


def _command_words(container: Obj) -> list[tuple[str, str]]:
    """The container's command line as (word, the field it is in); a shell's `-c SCRIPT`
    becomes the script's words (split as the shell would quote them)."""
    line = [(str(w), f"command[{k}]") for k, w in enumerate(container.get("command") or ())]
    line += [(str(w), f"args[{k}]") for k, w in enumerate(container.get("args") or ())]
    if len(line) < 3 or line[0][0].rsplit("/", 1)[-1] not in SHELLS or line[1][0] != "-c":
        return line
    script, field = line[2]
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True  # `--port 8000;` is `--port`, `8000`, `;`
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: the shell would refuse it too; read the words
        words = script.split()
    return [(word, field) for word in words]


def _claim_devices(spec: Json, container: Json, claim_template: str) -> None:
    """The pod claims through `claim_template`; the engine container uses the claim."""
    ref = {"name": CLAIM_NAME, "resourceClaimTemplateName": claim_template}
    spec["resourceClaims"] = [
        *(c for c in spec.get("resourceClaims") or () if c.get("name") != CLAIM_NAME),
        ref,
    ]
    resources = container.setdefault("resources", {})
    used = resources.get("claims") or []
    if not any(c.get("name") == CLAIM_NAME for c in used):
        resources["claims"] = [*used, {"name": CLAIM_NAME}]


CACHE_VOLUME = "modelplane-cache"


def _mount_cache(spec: Json, claim: str) -> None:
    """The ModelCache's claim as a read-only volume, mounted at `/mnt/models` in every
    container of the pod (replacing a volume or mount of the same name or path)."""
    volume = {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    spec["volumes"] = [
        *(v for v in spec.get("volumes") or () if v.get("name") != CACHE_VOLUME),
        volume,
    ]
    mount = {"name": CACHE_VOLUME, "mountPath": naming.CACHE_MOUNT_PATH, "readOnly": True}
    for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        kept = [
            m for m in container.get("volumeMounts") or ()
            if m.get("name") != CACHE_VOLUME and m.get("mountPath") != naming.CACHE_MOUNT_PATH
        ]  # fmt: skip
        container["volumeMounts"] = [*kept, dict(mount)]


def _add_leader_address(spec: Json) -> None:
    """`MODELPLANE_LEADER_ADDRESS` in every container of a gang pod that lacks it.

    It goes first, so the user's own env values may refer to it; the LeaderWorkerSet
    webhook puts `LWS_LEADER_ADDRESS` (with `LWS_GROUP_SIZE`, `LWS_WORKER_INDEX`) in
    front of every container's env at admission, so `$(LWS_LEADER_ADDRESS)` resolves.
    """
    leader = {"name": LEADER_ADDRESS_ENV, "value": f"$({LWS_LEADER_ADDRESS_ENV})"}
    for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        env = container.get("env") or []
        if not any(e.get("name") == LEADER_ADDRESS_ENV for e in env):
            container["env"] = [dict(leader), *env]
