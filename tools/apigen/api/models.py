"""The ML team's ModelDeployment and the scheduler's ModelReplica.

Guarantees: the topology rules (Standalone or Leader plus Workers, worker only
on a Worker, phases only under PrefillDecode with exactly one Prefill and one
Decode engine) are stated once as CEL and shared by both kinds; the member
``template`` is the only node of the whole API that keeps unknown fields.
"""

from __future__ import annotations

from tools.apigen.api.common import (
    ADDRESS,
    AGE,
    CEL_EXPRESSION,
    CLUSTER_SELECTOR,
    CONDITIONS,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    LOCAL_OBJECT_REFERENCE,
    TOLERATION,
    condition_column,
    observed_generation,
)
from tools.apigen.dsl import (
    Column,
    Field,
    Int,
    Kind,
    ListOf,
    Obj,
    Preserve,
    Rule,
    Scale,
    Str,
)

ROLE = Str(enum=("Standalone", "Leader", "Worker"))
PHASE = Str(enum=("Prefill", "Decode"))

SERVING = Obj(
    "Serving",
    "How the engines of a replica serve requests.",
    (
        Field(
            "mode",
            Str(enum=("Unified", "PrefillDecode")),
            "Unified: every engine serves whole requests. PrefillDecode: the two engines "
            "are one prefill/decode pair, marked by their phase.",
            default="Unified",
        ),
    ),
)

SERVING_FIELD = Field(
    "serving",
    SERVING,
    "How the engines serve requests: Unified (the default) or PrefillDecode.",
    default={},
)

WORKER = Obj(
    "WorkerSpec",
    "The size of a gang's worker set.",
    (
        Field(
            "nodes",
            Int(minimum=1, maximum=1024),
            "How many worker pods to run, one per node.",
            required=True,
        ),
    ),
)

SELECTOR = Obj(
    "DeviceSelector",
    "One condition a device must meet.",
    (
        Field(
            "cel",
            CEL_EXPRESSION,
            'A DRA CEL expression over one device, for example device.capacity["gpu.nvidia.com"]'
            '.memory.compareTo(quantity("40Gi")) >= 0.',
            required=True,
        ),
    ),
)

SELECTORS = Field(
    "selectors",
    ListOf(SELECTOR, max_items=8),
    "Conditions a device must all meet.",
)

DEVICE_REQUEST = Obj(
    "DeviceRequest",
    "A request for devices each pod of the member needs on its node.",
    (
        Field(
            "name",
            DNS_LABEL,
            "The request's name within the member, for example gpu.",
            required=True,
        ),
        Field("count", Int(minimum=1, maximum=1024), "How many devices each pod needs.", default=1),
        SELECTORS,
    ),
)

NODE_SELECTOR = Obj(
    "NodeSelector",
    "The hardware each pod of the member needs from its node.",
    (
        Field(
            "devices",
            ListOf(DEVICE_REQUEST, max_items=8, list_type="map", map_keys=("name",)),
            "Device requests a node pool must satisfy, every one; names are unique.",
        ),
    ),
)

TEMPLATE_DOC = (
    "The pod template of the member's pods: a Kubernetes PodTemplateSpec whose "
    "container named engine runs the serving engine. Passed through as written."
)

MEMBER_RULES = (
    Rule(
        "!has(self.worker) || self.role == 'Worker'",
        "worker is only valid on a Worker member",
        field_path=".worker",
    ),
    Rule(
        "self.role != 'Worker' || has(self.worker)",
        "a Worker member must set worker.nodes",
        field_path=".worker",
    ),
)

ENGINE_RULE = Rule(
    "(size(self.members) == 1 && self.members[0].role == 'Standalone')"
    " || (self.members.exists_one(m, m.role == 'Leader')"
    " && self.members.exists(m, m.role == 'Worker')"
    " && self.members.all(m, m.role != 'Standalone'))",
    "an engine is either exactly one Standalone member, or exactly one Leader plus one or "
    "more Worker members",
    field_path=".members",
)

SPEC_RULES = (
    Rule(
        "!has(self.serving) || self.serving.mode != 'PrefillDecode' || (size(self.engines) == 2"
        " && self.engines.exists_one(e, has(e.phase) && e.phase == 'Prefill')"
        " && self.engines.exists_one(e, has(e.phase) && e.phase == 'Decode'))",
        "serving.mode PrefillDecode needs exactly two engines, one with phase Prefill and "
        "one with phase Decode",
        field_path=".engines",
    ),
    Rule(
        "self.engines.all(e, !has(e.phase))"
        " || (has(self.serving) && self.serving.mode == 'PrefillDecode')",
        "engines[].phase is only valid when serving.mode is PrefillDecode",
        field_path=".engines",
    ),
)

MEMBER = Obj(
    "Member",
    "One role of an engine: a Standalone pod, a gang's Leader, or its Workers.",
    (
        Field(
            "role",
            ROLE,
            "Standalone: one pod. Leader: the gang's first pod. Worker: worker.nodes pods "
            "that join the leader.",
            default="Standalone",
        ),
        Field("worker", WORKER, "How many worker pods a Worker member runs; Worker only."),
        Field(
            "nodeSelector",
            NODE_SELECTOR,
            "The devices each pod needs. A member without one claims no devices.",
        ),
        Field("template", Preserve(), TEMPLATE_DOC, required=True),
    ),
    rules=MEMBER_RULES,
)

ENGINE = Obj(
    "Engine",
    "One serving engine: a Standalone pod or a Leader/Worker gang, run copies times.",
    (
        Field("name", DNS_LABEL, "The engine's name, unique in the deployment.", required=True),
        Field(
            "phase",
            PHASE,
            "Prefill or Decode: which half of a prefill/decode pair this engine serves. "
            "Only under serving.mode PrefillDecode.",
        ),
        Field(
            "copies",
            Int(minimum=1, maximum=1024),
            "Identical copies of the engine within one replica, on one cluster.",
            default=1,
        ),
        Field(
            "members",
            ListOf(MEMBER, max_items=8, min_items=1),
            "The engine's members: one Standalone, or one Leader and one or more Workers.",
            required=True,
        ),
    ),
    rules=(ENGINE_RULE,),
)

MODEL_DEPLOYMENT = Kind(
    kind="ModelDeployment",
    # Its name is the value of a label on every replica and endpoint (at most 63).
    name_max_length=63,
    plural="modeldeployments",
    short_names=("md",),
    scope="Namespaced",
    doc="A ModelDeployment serves a model across the fleet: the engines and hardware it "
    "needs and how many complete replicas to run. The scheduler places each replica on a "
    "matching cluster; you never name one.",
    spec=Obj(
        "ModelDeploymentSpec",
        "The model's serving topology and size.",
        (
            Field(
                "replicas",
                Int(minimum=0, maximum=100000),
                "How many complete serving instances to run across the fleet; 0 scales to "
                "zero. The scale subresource's target.",
                default=1,
            ),
            Field(
                "clusterSelector",
                CLUSTER_SELECTOR,
                "Restricts replicas to InferenceClusters with these labels. Unset: any cluster.",
            ),
            Field(
                "modelCacheRef",
                LOCAL_OBJECT_REFERENCE,
                "A ModelCache in this namespace whose weights every pod mounts at /mnt/models.",
            ),
            Field(
                "tolerations",
                ListOf(TOLERATION, max_items=16),
                "Taints of InferenceClusters this deployment's replicas tolerate.",
            ),
            SERVING_FIELD,
            Field(
                "engines",
                ListOf(ENGINE, max_items=8, min_items=1, list_type="map", map_keys=("name",)),
                "The engines of one replica; names are unique.",
                required=True,
            ),
        ),
        rules=SPEC_RULES,
    ),
    status=Obj(
        "ModelDeploymentStatus",
        "The observed state of the deployment.",
        (
            Field("replicas", Int(minimum=0), "Replicas placed on a cluster."),
            Field("readyReplicas", Int(minimum=0), "Replicas ready to serve."),
            Field("desiredReplicas", Int(minimum=0), "Replicas the spec asks for."),
            Field(
                "selector",
                Str(max_length=1024),
                "The label selector of the deployment's replicas, serialized (for example "
                "modelplane.ai/deployment=qwen), for the scale subresource.",
            ),
            CONDITIONS,
            observed_generation("deployment"),
        ),
    ),
    columns=(
        Column("Replicas", "integer", ".status.readyReplicas", "Replicas ready to serve."),
        Column("Desired", "integer", ".spec.replicas", "Replicas asked for."),
        AGE,
    ),
    scale=Scale(".spec.replicas", ".status.replicas", ".status.selector"),
)

# ------------------------------------------------------------------ ModelReplica

REPLICA_DEVICE_REQUEST = Obj(
    "ReplicaDeviceRequest",
    "A device request resolved against the pool's class, ready for a DRA ResourceClaim.",
    (
        Field("name", DNS_LABEL, "The request's name within the member.", required=True),
        Field(
            "count", Int(minimum=1, maximum=1024), "How many devices each pod claims.", default=1
        ),
        Field(
            "deviceClassName",
            DNS_SUBDOMAIN,
            "The DRA DeviceClass the devices are claimed through.",
        ),
        SELECTORS,
    ),
)

REPLICA_MEMBER = Obj(
    "ReplicaMember",
    "A member of a placed engine.",
    (
        Field("role", ROLE, "Standalone, Leader or Worker.", default="Standalone"),
        Field("worker", WORKER, "How many worker pods a Worker member runs; Worker only."),
        Field(
            "nodePoolName",
            DNS_LABEL,
            "The node pool the member's pods are pinned to.",
        ),
        Field(
            "deviceRequests",
            ListOf(REPLICA_DEVICE_REQUEST, max_items=8, list_type="map", map_keys=("name",)),
            "The DRA device requests each pod claims.",
        ),
        Field("template", Preserve(), TEMPLATE_DOC),
    ),
    rules=MEMBER_RULES,
)

REPLICA_ENGINE = Obj(
    "ReplicaEngine",
    "An engine of the replica, pinned to one node pool.",
    (
        Field("name", DNS_LABEL, "The engine's name.", required=True),
        Field("phase", PHASE, "Prefill or Decode, under serving.mode PrefillDecode."),
        Field("copies", Int(minimum=1, maximum=1024), "Identical copies of the engine.", default=1),
        Field("nodePoolName", DNS_LABEL, "The node pool every member of the engine is pinned to."),
        Field(
            "nodeCost",
            Int(minimum=0),
            "Nodes charged to the pool when the engine was placed; the scheduler's ledger "
            "reads this.",
        ),
        Field(
            "members",
            ListOf(REPLICA_MEMBER, max_items=8, min_items=1),
            "The engine's members.",
            required=True,
        ),
    ),
    rules=(ENGINE_RULE,),
)

MODEL_REPLICA = Kind(
    kind="ModelReplica",
    plural="modelreplicas",
    short_names=("mr",),
    scope="Namespaced",
    doc="A ModelReplica is one complete serving instance of a ModelDeployment, pinned to one "
    "cluster with each engine pinned to one pool. The fleet scheduler writes them; avoid "
    "creating them directly.",
    spec=Obj(
        "ModelReplicaSpec",
        "The placed serving instance.",
        (
            Field(
                "clusterName",
                DNS_SUBDOMAIN,
                "The InferenceCluster the replica runs on.",
                required=True,
            ),
            Field("deploymentName", DNS_SUBDOMAIN, "The ModelDeployment the replica belongs to."),
            Field("index", Int(minimum=0), "The replica's index within its deployment."),
            Field(
                "modelCacheRef",
                LOCAL_OBJECT_REFERENCE,
                "The ModelCache every pod mounts at /mnt/models.",
            ),
            SERVING_FIELD,
            Field(
                "engines",
                ListOf(
                    REPLICA_ENGINE, max_items=8, min_items=1, list_type="map", map_keys=("name",)
                ),
                "The replica's engines, each pinned to a pool.",
                required=True,
            ),
        ),
        rules=SPEC_RULES,
    ),
    status=Obj(
        "ModelReplicaStatus",
        "The observed state of the replica.",
        (
            CONDITIONS,
            observed_generation("replica"),
            Field(
                "address",
                ADDRESS,
                "The replica's base URL on its cluster's gateway, once reachable.",
            ),
        ),
    ),
    columns=(
        Column("Cluster", "string", ".spec.clusterName", "The cluster the replica runs on."),
        condition_column("Synced", "Synced", "Whether the workload is applied on the cluster."),
        condition_column("Ready", "Ready", "Whether the replica serves requests."),
        AGE,
    ),
)
