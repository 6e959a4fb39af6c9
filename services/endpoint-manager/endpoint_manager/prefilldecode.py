"""The objects of a `PrefillDecode` replica: two phase engines and the router in front. Pure.

`render(renderer, engines)` is what `workload.render` returns for a replica with
`spec.serving.mode: PrefillDecode`; in apply order:

1. the Namespace and the engines' ResourceClaimTemplates, as for a Unified replica;
2. each phase engine's workload exactly as a Unified engine's (a Deployment of
   `copies` pods, or a LeaderWorkerSet of `copies` gangs), on its own pool;
3. per phase engine a ClusterIP Service `<replica>-<engine>` selecting that
   engine's serving pods (port `http`): the router follows its EndpointSlices;
4. the router's identity: a ServiceAccount, a Role allowing get/list/watch of
   `discovery.k8s.io` endpointslices in the namespace (nothing else) and the
   RoleBinding between them, all named `<replica>-router`;
5. the router's Deployment (`ROUTER_COPIES` pod of `router_image` running
   `modelplane-pd-router --namespace <ns> --prefill-service ... --decode-service ...`,
   listening on the pod IP, readiness on its `/readyz`; a preStop sleep of
   `ROUTER_PRESTOP_S` before SIGTERM, on which it drains for up to
   `ROUTER_SHUTDOWN_GRACE_S`, all inside the pod's `terminationGracePeriodSeconds`
   `ROUTER_TERMINATION_GRACE_S`), placed on the cluster's
   system nodes: nodeSelector `modelplane.ai/system: "true"` (`SYSTEM_NODE_LABEL`,
   which a platform puts on its non-GPU nodes; the local fleet does) and a toleration
   of that key, so a platform may also taint them;
6. the replica's Service (named after the replica, port 80 to the router) and its
   HTTPRoute, as for a Unified replica.

The replica serves once one prefill pod, one decode pod and the router are ready
(`Rendered.one_ready` names the phase workloads; the router's Deployment must be
fully ready). Validation: exactly two engines, one `phase: Prefill` and one
`phase: Decode`, neither named `router`; the error names the field
(`spec.engines[i].phase`, `spec.engines[i].name`, `spec.engines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelplane.wellknown import SYSTEM_NODE_LABEL, Json

from endpoint_manager.workload import (
    ENGINE_LABEL,
    RBAC_API,
    REPLICA_LABEL,
    ROLE_LABEL,
    SERVING_LABEL,
    Obj,
    Rendered,
    object_name,
)

if TYPE_CHECKING:
    from endpoint_manager.workload import _Renderer

PHASES = ("Prefill", "Decode")
ROUTER_ROLE = "Router"
ROUTER_NAME = "router"
"""The router's objects are `<replica>-router`: no engine may take that name."""
ROUTER_PORT = 8000
ROUTER_STATUS_PORT = 9090
ROUTER_COPIES = 1
ROUTER_COMMAND = "modelplane-pd-router"
ROUTER_SHUTDOWN_GRACE_S = 30
"""What the router gives requests in flight (streams) to finish once it drains (SIGTERM)."""
ROUTER_PRESTOP_S = 5
"""The router pod's preStop sleep: the kubelet holds SIGTERM back this long after the pod
starts terminating, while the endpoint controllers and the gateways drop it from the
Services, so new connections stop coming before the router stops listening."""
ROUTER_TERMINATION_GRACE_S = ROUTER_PRESTOP_S + ROUTER_SHUTDOWN_GRACE_S + 5
"""The pod's grace before SIGKILL (the preStop sleep counts in it): the sleep, the drain
and time to exit."""
ROUTER_RESOURCES = {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def render(renderer: _Renderer, engines: Sequence[Obj]) -> Rendered:
    """The replica's objects in apply order (see the module docstring)."""
    by_phase = _phases(renderer, engines)
    claims: list[Json] = []
    workloads: list[Json] = []
    services: list[Json] = []
    phase_services: dict[str, str] = {}
    for phase in PHASES:
        i = by_phase[phase]
        engine = engines[i]
        pods, workload = renderer.engine(engine, f"spec.engines[{i}]")
        claims += [p.claim_template for p in pods if p.claim_template is not None]
        workloads.append(workload)
        service = object_name(renderer.name, engine["name"])
        selector = {ENGINE_LABEL: engine["name"], SERVING_LABEL: "true"}
        services.append(renderer.service(service, pods[0].port, selector))
        phase_services[phase] = service
    name = object_name(renderer.name, ROUTER_NAME)
    router = _router_deployment(renderer, name, phase_services)
    serving = object_name(renderer.name)
    path = f"/{renderer.namespace}/{renderer.name}/"
    objects = (
        renderer.namespace_object(),
        *claims,
        *workloads,
        *services,
        *_router_identity(renderer, name),
        router,
        renderer.service(serving, ROUTER_PORT, {ROLE_LABEL: ROUTER_ROLE}),
        renderer.route(serving, path),
    )
    one_ready = frozenset((w["kind"], w["metadata"]["name"]) for w in workloads)
    return Rendered(objects=objects, serving_service=serving, path=path, one_ready=one_ready)


def _phases(renderer: _Renderer, engines: Sequence[Obj]) -> dict[str, int]:
    """Index of the engine of each phase; an error naming the field unless there are
    exactly two engines, one per phase."""
    found: dict[str, int] = {}
    for i, engine in enumerate(engines):
        if engine.get("name") == ROUTER_NAME:
            raise renderer.error(
                f"spec.engines[{i}].name", f"{ROUTER_NAME!r} is the router's; name the engine else"
            )
        phase = engine.get("phase")
        if phase not in PHASES:
            raise renderer.error(
                f"spec.engines[{i}].phase",
                f"{phase!r}: each engine of a PrefillDecode replica is Prefill or Decode",
            )
        if phase in found:
            raise renderer.error(
                f"spec.engines[{i}].phase",
                f"spec.engines[{found[phase]}] is already the {phase} engine; "
                "a PrefillDecode replica has one engine per phase",
            )
        found[phase] = i
    missing = [p for p in PHASES if p not in found]
    if missing:
        raise renderer.error(
            "spec.engines", f"a PrefillDecode replica needs a {missing[0]} engine; it has none"
        )
    return found


def _router_identity(renderer: _Renderer, name: str) -> tuple[Json, Json, Json]:
    """ServiceAccount, Role (read EndpointSlices of the namespace) and RoleBinding."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": renderer.meta(name)}
    role = {
        "apiVersion": RBAC_API,
        "kind": "Role",
        "metadata": renderer.meta(name),
        "rules": [
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["get", "list", "watch"],
            }
        ],
    }
    binding = {
        "apiVersion": RBAC_API,
        "kind": "RoleBinding",
        "metadata": renderer.meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": renderer.namespace}],
    }
    return account, role, binding


def _router_deployment(renderer: _Renderer, name: str, services: dict[str, str]) -> Json:
    labels = {**renderer.labels, ROLE_LABEL: ROUTER_ROLE}
    selector = {REPLICA_LABEL: renderer.labels[REPLICA_LABEL], ROLE_LABEL: ROUTER_ROLE}
    args = [
        f"--namespace={renderer.namespace}",
        f"--prefill-service={services['Prefill']}",
        f"--decode-service={services['Decode']}",
        f"--listen=$(POD_IP):{ROUTER_PORT}",
        f"--status-address=$(POD_IP):{ROUTER_STATUS_PORT}",
        f"--shutdown-grace={ROUTER_SHUTDOWN_GRACE_S}",
    ]
    container = {
        "name": ROUTER_NAME,
        "image": renderer.router_image,
        "command": [ROUTER_COMMAND],
        "args": args,
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [
            {"name": "http", "containerPort": ROUTER_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ROUTER_STATUS_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": ROUTER_STATUS_PORT},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": ROUTER_STATUS_PORT},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": ROUTER_PRESTOP_S}}},
        "resources": ROUTER_RESOURCES,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": renderer.meta(name, {ROLE_LABEL: ROUTER_ROLE}),
        "spec": {
            "replicas": ROUTER_COPIES,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "terminationGracePeriodSeconds": ROUTER_TERMINATION_GRACE_S,
                    "nodeSelector": {SYSTEM_NODE_LABEL: "true"},
                    "tolerations": [{"key": SYSTEM_NODE_LABEL, "operator": "Exists"}],
                    "containers": [container],
                },
            },
        },
    }
