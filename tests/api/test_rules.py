"""Every schema bound and cross-field rule, as named cases: rejected with its message, or accepted.

Each case starts from a small valid object of its kind (``builders.valid``),
changes one thing, and expects exactly the error that names the field and rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from modelplane.api import validate

from tests.api.builders import GANG, Delete, Edit, Set, edited, engine, member, valid


@dataclass(frozen=True)
class Rejected:
    name: str
    kind: str
    edits: tuple[Edit, ...]
    path: str
    message: str


@dataclass(frozen=True)
class Accepted:
    name: str
    kind: str
    edits: tuple[Edit, ...]


def rejected(name: str, kind: str, path: str, message: str, *edits: Edit) -> Rejected:
    return Rejected(name, kind, edits, path, message)


def accepted(name: str, kind: str, *edits: Edit) -> Accepted:
    return Accepted(name, kind, edits)


IC, CL, GW = "InferenceClass", "InferenceCluster", "InferenceGateway"
MD, MR, MS, ME, MC = (
    "ModelDeployment",
    "ModelReplica",
    "ModelService",
    "ModelEndpoint",
    "ModelCache",
)
DEV0 = "spec.devices[0]"
POOL0 = "spec.nodePools[0]"
ENG0 = "spec.engines[0]"
MEM0 = f"{ENG0}.members[0]"
PD = Set("spec.serving", {"mode": "PrefillDecode"})

REJECTED = [
    # ------------------------------------------------------------ InferenceClass
    rejected(
        "A provider other than GKE or EKS is rejected",
        IC,
        "spec.provisioning.provider",
        'Unsupported value: "AKS"',
        Set("spec.provisioning.provider", "AKS"),
    ),
    rejected(
        "Provider GKE without a gke block is rejected",
        IC,
        "spec.provisioning",
        "provider GKE needs provisioning.gke",
        Delete("spec.provisioning.gke"),
    ),
    rejected(
        "Provider EKS without an eks block is rejected",
        IC,
        "spec.provisioning",
        "provider EKS needs provisioning.eks",
        Set("spec.provisioning.provider", "EKS"),
        Delete("spec.provisioning.gke"),
    ),
    rejected(
        "An eks block under provider GKE is rejected",
        IC,
        "spec.provisioning.eks",
        "provisioning.eks is only valid when provider is EKS",
        Set("spec.provisioning.eks", {"instanceType": "g6.xlarge"}),
    ),
    rejected(
        "A gke block under provider EKS is rejected",
        IC,
        "spec.provisioning.gke",
        "provisioning.gke is only valid when provider is GKE",
        Set("spec.provisioning.provider", "EKS"),
        Set("spec.provisioning.eks", {"instanceType": "g6.xlarge"}),
    ),
    rejected(
        "A class without devices is rejected",
        IC,
        "spec.devices",
        "Required value",
        Delete("spec.devices"),
    ),
    rejected(
        "A class with an empty device list is rejected",
        IC,
        "spec.devices",
        "must have at least 1 items",
        Set("spec.devices", []),
    ),
    rejected(
        "Two devices with the same name are rejected",
        IC,
        "spec.devices[1]",
        'Duplicate value: {"name":"gpu"}',
        Set("spec.devices[1].name", "gpu"),
    ),
    rejected(
        "A DRA device without deviceClassName is rejected",
        IC,
        f"{DEV0}.deviceClassName",
        "a DRA device names its device class",
        Delete(f"{DEV0}.deviceClassName"),
    ),
    rejected(
        "A claim other than DRA or Synthetic is rejected",
        IC,
        f"{DEV0}.claim",
        'supported values: "DRA", "Synthetic"',
        Set(f"{DEV0}.claim", "Virtual"),
    ),
    rejected(
        "A device without a driver is rejected",
        IC,
        f"{DEV0}.driver",
        "Required value",
        Delete(f"{DEV0}.driver"),
    ),
    rejected(
        "A negative device count is rejected",
        IC,
        f"{DEV0}.count",
        "must be greater than or equal to 0",
        Set(f"{DEV0}.count", -1),
    ),
    rejected(
        "A device name that is not a DNS label is rejected",
        IC,
        f"{DEV0}.name",
        "should match",
        Set(f"{DEV0}.name", "GPU_0"),
    ),
    rejected(
        "An attribute with two types is rejected",
        IC,
        f"{DEV0}.attributes[architecture]",
        "an attribute sets exactly one of string, bool, int or version",
        Set(f"{DEV0}.attributes.architecture", {"string": "Hopper", "bool": True}),
    ),
    rejected(
        "An attribute with no type is rejected",
        IC,
        f"{DEV0}.attributes[architecture]",
        "an attribute sets exactly one of string, bool, int or version",
        Set(f"{DEV0}.attributes.architecture", {}),
    ),
    rejected(
        "An attribute name with a space is rejected",
        IC,
        f"{DEV0}.attributes",
        "attribute names are a C identifier",
        Set(f"{DEV0}.attributes", {"compute capability": {"string": "9.0"}}),
    ),
    rejected(
        "A version attribute that is not a semantic version is rejected",
        IC,
        f"{DEV0}.attributes[cc].version",
        "should match",
        Set(f"{DEV0}.attributes.cc", {"version": "9.0"}),
    ),
    rejected(
        "A capacity that is not a quantity is rejected",
        IC,
        f"{DEV0}.capacity[memory].value",
        "should match",
        Set(f"{DEV0}.capacity.memory.value", "lots"),
    ),
    rejected(
        "A capacity name with a bad domain is rejected",
        IC,
        f"{DEV0}.capacity",
        "capacity names are a C identifier",
        Set(f"{DEV0}.capacity", {"Bad_Domain/memory": {"value": 1}}),
    ),
    rejected(
        "An unknown field in an InferenceClass spec is rejected",
        IC,
        "spec.gpus",
        'unknown field "gpus"',
        Set("spec.gpus", 8),
    ),
    rejected(
        "An unknown field in a device is rejected",
        IC,
        f"{DEV0}.vendor",
        'unknown field "vendor"',
        Set(f"{DEV0}.vendor", "nvidia"),
    ),
    # ---------------------------------------------------------- InferenceCluster
    rejected(
        "A cluster source outside GKE, EKS and Existing is rejected",
        CL,
        "spec.cluster.source",
        'Unsupported value: "AKS"',
        Set("spec.cluster.source", "AKS"),
    ),
    rejected(
        "Source GKE without a gke block is rejected",
        CL,
        "spec.cluster",
        "source GKE needs cluster.gke",
        Delete("spec.cluster.gke"),
    ),
    rejected(
        "Source EKS without an eks block is rejected",
        CL,
        "spec.cluster",
        "source EKS needs cluster.eks",
        Set("spec.cluster", {"source": "EKS"}),
    ),
    rejected(
        "Source Existing without an existing block is rejected",
        CL,
        "spec.cluster",
        "source Existing needs cluster.existing.secretRef",
        Set("spec.cluster", {"source": "Existing"}),
    ),
    rejected(
        "An existing block without a secretRef is rejected",
        CL,
        "spec.cluster.existing.secretRef",
        "Required value",
        Set("spec.cluster", {"source": "Existing", "existing": {}}),
    ),
    rejected(
        "An eks block on a GKE cluster is rejected",
        CL,
        "spec.cluster.eks",
        "cluster.eks is only valid when source is EKS",
        Set("spec.cluster.eks", {"region": "us-west-2"}),
    ),
    rejected(
        "An existing block on a GKE cluster is rejected",
        CL,
        "spec.cluster.existing",
        "cluster.existing is only valid when source is Existing",
        Set("spec.cluster.existing", {"secretRef": {"name": "kubeconfig"}}),
    ),
    rejected(
        "minNodeCount above maxNodeCount is rejected",
        CL,
        f"{POOL0}.minNodeCount",
        "minNodeCount must not exceed maxNodeCount",
        Set(f"{POOL0}.minNodeCount", 5),
    ),
    rejected(
        "A negative nodeCount is rejected",
        CL,
        f"{POOL0}.nodeCount",
        "must be greater than or equal to 0",
        Set(f"{POOL0}.nodeCount", -1),
    ),
    rejected(
        "A pool without a class is rejected",
        CL,
        f"{POOL0}.className",
        "Required value",
        Delete(f"{POOL0}.className"),
    ),
    rejected(
        "Two pools with the same name are rejected",
        CL,
        "spec.nodePools[1]",
        'Duplicate value: {"name":"gpu-l4"}',
        Set("spec.nodePools[1]", {"name": "gpu-l4", "className": "x", "nodeCount": 1}),
    ),
    rejected(
        "A capacity block on a GKE cluster is rejected",
        CL,
        "spec.nodePools",
        "capacityBlock is an EC2 capacity reservation",
        Set(f"{POOL0}.capacityBlock", {"capacityReservationId": "cr-0123"}),
    ),
    rejected(
        "A cluster without node pools is rejected",
        CL,
        "spec.nodePools",
        "Required value",
        Delete("spec.nodePools"),
    ),
    rejected(
        "An unknown field in a node pool is rejected",
        CL,
        f"{POOL0}.gpus",
        'unknown field "gpus"',
        Set(f"{POOL0}.gpus", 8),
    ),
    rejected(
        "A condition status other than True, False or Unknown is rejected",
        CL,
        "status.conditions[0].status",
        'Unsupported value: "Maybe"',
        Set(
            "status",
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Maybe",
                        "reason": "X",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
        ),
    ),
    rejected(
        "Two conditions of one type are rejected",
        CL,
        "status.conditions[1]",
        'Duplicate value: {"type":"Ready"}',
        Set(
            "status",
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Up",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "Down",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                ]
            },
        ),
    ),
    # ---------------------------------------------------------- taints and tolerations
    rejected(
        "An Equal toleration without a key is rejected",
        MD,
        "spec.tolerations[0].key",
        "an Equal toleration needs a key",
        Set("spec.tolerations", [{"operator": "Equal", "value": "true"}]),
    ),
    rejected(
        "An Exists toleration with a value is rejected",
        MD,
        "spec.tolerations[0].value",
        "an Exists toleration matches any value and must not set one",
        Set("spec.tolerations", [{"key": "maintenance", "operator": "Exists", "value": "x"}]),
    ),
    rejected(
        "A taint effect other than NoSchedule or NoExecute is rejected",
        CL,
        "spec.taints[0].effect",
        'Unsupported value: "Evict"',
        Set("spec.taints", [{"key": "maintenance", "effect": "Evict"}]),
    ),
    rejected(
        "A taint without an effect is rejected",
        CL,
        "spec.taints[0].effect",
        "Required value",
        Set("spec.taints", [{"key": "maintenance"}]),
    ),
    rejected(
        "Two taints with the same key and effect are rejected",
        CL,
        "spec.taints[1]",
        "Duplicate value",
        Set(
            "spec.taints",
            [
                {"key": "maintenance", "value": "a", "effect": "NoSchedule"},
                {"key": "maintenance", "value": "b", "effect": "NoSchedule"},
            ],
        ),
    ),
    # ---------------------------------------------------------- InferenceGateway
    rejected(
        "An InferenceGateway not named default is rejected",
        GW,
        "metadata.name",
        "the InferenceGateway is a singleton and must be named default",
        Set("metadata.name", "main"),
    ),
    rejected(
        "A backend other than Traefik is rejected",
        GW,
        "spec.backend",
        'Unsupported value: "Envoy"',
        Set("spec.backend", "Envoy"),
    ),
    rejected(
        "A gateway TLS Secret name that is not a DNS name is rejected",
        GW,
        "spec.tls.secretName",
        "should match",
        Set("spec.tls", {"secretName": "Front_Door"}),
    ),
    rejected(
        "A load balancer other than MetalLB is rejected",
        GW,
        "spec.traefik.loadBalancer",
        'Unsupported value: "F5"',
        Set("spec.traefik.loadBalancer", "F5"),
    ),
    rejected(
        "MetalLB without an address pool is rejected",
        GW,
        "spec.traefik",
        "loadBalancer MetalLB needs traefik.metallb.addressPool",
        Delete("spec.traefik.metallb"),
    ),
    rejected(
        "A metallb block without the MetalLB load balancer is rejected",
        GW,
        "spec.traefik.metallb",
        "traefik.metallb is only valid when loadBalancer is MetalLB",
        Delete("spec.traefik.loadBalancer"),
    ),
    rejected(
        "An unknown field in the traefik block is rejected",
        GW,
        "spec.traefik.replicas",
        'unknown field "replicas"',
        Set("spec.traefik.replicas", 2),
    ),
    # ----------------------------------------------------------- ModelDeployment
    rejected(
        "Negative replicas are rejected",
        MD,
        "spec.replicas",
        "must be greater than or equal to 0",
        Set("spec.replicas", -1),
    ),
    rejected(
        "More than 100000 replicas are rejected",
        MD,
        "spec.replicas",
        "must be less than or equal to 100000",
        Set("spec.replicas", 100001),
    ),
    rejected(
        "Replicas given as a string are rejected",
        MD,
        "spec.replicas",
        "must be of type integer",
        Set("spec.replicas", "2"),
    ),
    rejected(
        "A deployment without engines is rejected",
        MD,
        "spec.engines",
        "Required value",
        Delete("spec.engines"),
    ),
    rejected(
        "A deployment with an empty engine list is rejected",
        MD,
        "spec.engines",
        "must have at least 1 items",
        Set("spec.engines", []),
    ),
    rejected(
        "Two engines with the same name are rejected",
        MD,
        "spec.engines[1]",
        'Duplicate value: {"name":"qwen"}',
        Set("spec.engines[1]", engine("qwen")),
    ),
    rejected(
        "An engine name that is not a DNS label is rejected",
        MD,
        f"{ENG0}.name",
        "should match",
        Set(f"{ENG0}.name", "Qwen.3"),
    ),
    rejected(
        "A serving mode other than Unified or PrefillDecode is rejected",
        MD,
        "spec.serving.mode",
        'Unsupported value: "Speculative"',
        Set("spec.serving", {"mode": "Speculative"}),
    ),
    rejected(
        "A member role outside Standalone, Leader and Worker is rejected",
        MD,
        f"{MEM0}.role",
        'Unsupported value: "Boss"',
        Set(f"{MEM0}.role", "Boss"),
    ),
    rejected(
        "A phase other than Prefill or Decode is rejected",
        MD,
        f"{ENG0}.phase",
        'Unsupported value: "Both"',
        PD,
        Set(f"{ENG0}.phase", "Both"),
        Set("spec.engines[1]", engine("decode", phase="Decode")),
    ),
    rejected(
        "A phase under Unified serving is rejected",
        MD,
        "spec.engines",
        "engines[].phase is only valid when serving.mode is PrefillDecode",
        Set(f"{ENG0}.phase", "Prefill"),
    ),
    rejected(
        "A phase with serving left to its Unified default is rejected",
        MD,
        "spec.engines",
        "engines[].phase is only valid when serving.mode is PrefillDecode",
        Set("spec.serving", {}),
        Set(f"{ENG0}.phase", "Decode"),
    ),
    rejected(
        "PrefillDecode with one engine is rejected",
        MD,
        "spec.engines",
        "serving.mode PrefillDecode needs exactly two engines, one with phase Prefill and "
        "one with phase Decode",
        PD,
        Set(f"{ENG0}.phase", "Prefill"),
    ),
    rejected(
        "PrefillDecode with two Prefill engines is rejected",
        MD,
        "spec.engines",
        "serving.mode PrefillDecode needs exactly two engines",
        PD,
        Set(f"{ENG0}.phase", "Prefill"),
        Set("spec.engines[1]", engine("prefill-2", phase="Prefill")),
    ),
    rejected(
        "PrefillDecode with an engine missing its phase is rejected",
        MD,
        "spec.engines",
        "serving.mode PrefillDecode needs exactly two engines",
        PD,
        Set(f"{ENG0}.phase", "Prefill"),
        Set("spec.engines[1]", engine("decode")),
    ),
    rejected(
        "PrefillDecode with three engines is rejected",
        MD,
        "spec.engines",
        "serving.mode PrefillDecode needs exactly two engines",
        PD,
        Set(f"{ENG0}.phase", "Prefill"),
        Set("spec.engines[1]", engine("decode", phase="Decode")),
        Set("spec.engines[2]", engine("decode-2", phase="Decode")),
    ),
    rejected(
        "A Leader without a Worker is rejected",
        MD,
        f"{ENG0}.members",
        "an engine is either exactly one Standalone member, or exactly one Leader plus one "
        "or more Worker members",
        Set(f"{ENG0}.members", [member("Leader")]),
    ),
    rejected(
        "Two Standalone members are rejected",
        MD,
        f"{ENG0}.members",
        "an engine is either exactly one Standalone member",
        Set(f"{ENG0}.members", [member(), member()]),
    ),
    rejected(
        "A Standalone beside a Leader and a Worker is rejected",
        MD,
        f"{ENG0}.members",
        "an engine is either exactly one Standalone member",
        Set(f"{ENG0}.members", [member(), *GANG]),
    ),
    rejected(
        "Two Leaders are rejected",
        MD,
        f"{ENG0}.members",
        "an engine is either exactly one Standalone member",
        Set(f"{ENG0}.members", [member("Leader"), *GANG]),
    ),
    rejected(
        "Workers without a Leader are rejected",
        MD,
        f"{ENG0}.members",
        "an engine is either exactly one Standalone member",
        Set(f"{ENG0}.members", [GANG[1]]),
    ),
    rejected(
        "worker.nodes on a Standalone member is rejected",
        MD,
        f"{MEM0}.worker",
        "worker is only valid on a Worker member",
        Set(f"{MEM0}.worker", {"nodes": 1}),
    ),
    rejected(
        "worker.nodes on a Leader is rejected",
        MD,
        f"{MEM0}.worker",
        "worker is only valid on a Worker member",
        Set(f"{ENG0}.members", GANG),
        Set(f"{MEM0}.worker", {"nodes": 1}),
    ),
    rejected(
        "A Worker without worker.nodes is rejected",
        MD,
        f"{ENG0}.members[1].worker",
        "a Worker member must set worker.nodes",
        Set(f"{ENG0}.members", [member("Leader"), member("Worker")]),
    ),
    rejected(
        "A worker block without nodes is rejected",
        MD,
        f"{ENG0}.members[1].worker.nodes",
        "Required value",
        Set(f"{ENG0}.members", [member("Leader"), member("Worker", worker={})]),
    ),
    rejected(
        "Zero worker nodes are rejected",
        MD,
        f"{ENG0}.members[1].worker.nodes",
        "must be greater than or equal to 1",
        Set(f"{ENG0}.members", GANG),
        Set(f"{ENG0}.members[1].worker.nodes", 0),
    ),
    rejected(
        "Zero engine copies are rejected",
        MD,
        f"{ENG0}.copies",
        "must be greater than or equal to 1",
        Set(f"{ENG0}.copies", 0),
    ),
    rejected(
        "A device request for zero devices is rejected",
        MD,
        f"{MEM0}.nodeSelector.devices[0].count",
        "must be greater than or equal to 1",
        Set(f"{MEM0}.nodeSelector.devices[0].count", 0),
    ),
    rejected(
        "A selector without cel is rejected",
        MD,
        f"{MEM0}.nodeSelector.devices[0].selectors[0].cel",
        "Required value",
        Set(f"{MEM0}.nodeSelector.devices[0].selectors[0]", {}),
    ),
    rejected(
        "A member without a template is rejected",
        MD,
        f"{MEM0}.template",
        "Required value",
        Delete(f"{MEM0}.template"),
    ),
    rejected(
        "A template that is not an object is rejected",
        MD,
        f"{MEM0}.template",
        "must be of type object",
        Set(f"{MEM0}.template", "pod"),
    ),
    rejected(
        "A cluster selector label value that is not a string is rejected",
        MD,
        "spec.clusterSelector.matchLabels[tier]",
        "must be of type string",
        Set("spec.clusterSelector", {"matchLabels": {"tier": 1}}),
    ),
    rejected(
        "A cache reference without a name is rejected",
        MD,
        "spec.modelCacheRef.name",
        "Required value",
        Set("spec.modelCacheRef", {}),
    ),
    rejected(
        "An unknown field in a ModelDeployment spec is rejected",
        MD,
        "spec.cluster",
        'unknown field "cluster"',
        Set("spec.cluster", "gke-us"),
    ),
    rejected(
        "An unknown field in a member is rejected",
        MD,
        f"{MEM0}.resources",
        'unknown field "resources"',
        Set(f"{MEM0}.resources", {}),
    ),
    rejected(
        "An unknown field in a node selector is rejected",
        MD,
        f"{MEM0}.nodeSelector.gpu",
        'unknown field "gpu"',
        Set(f"{MEM0}.nodeSelector.gpu", 1),
    ),
    rejected(
        "A status selector that is not a string is rejected",
        MD,
        "status.selector",
        "must be of type string",
        Set("status", {"selector": {"a": "b"}}),
    ),
    # -------------------------------------------------------------- ModelReplica
    rejected(
        "A replica without a cluster is rejected",
        MR,
        "spec.clusterName",
        "Required value",
        Delete("spec.clusterName"),
    ),
    rejected(
        "A negative node cost is rejected",
        MR,
        f"{ENG0}.nodeCost",
        "must be greater than or equal to 0",
        Set(f"{ENG0}.nodeCost", -1),
    ),
    rejected(
        "A negative replica index is rejected",
        MR,
        "spec.index",
        "must be greater than or equal to 0",
        Set("spec.index", -1),
    ),
    rejected(
        "worker.nodes on a Standalone replica member is rejected",
        MR,
        f"{MEM0}.worker",
        "worker is only valid on a Worker member",
        Set(f"{MEM0}.worker", {"nodes": 2}),
    ),
    rejected(
        "An unknown field in a device request of a replica is rejected",
        MR,
        f"{MEM0}.deviceRequests[0].driver",
        'unknown field "driver"',
        Set(f"{MEM0}.deviceRequests[0].driver", "gpu.nvidia.com"),
    ),
    # -------------------------------------------------------------- ModelService
    rejected(
        "A service without endpoints is rejected",
        MS,
        "spec.endpoints",
        "must have at least 1 items",
        Set("spec.endpoints", []),
    ),
    rejected(
        "An endpoint entry without a selector is rejected",
        MS,
        "spec.endpoints[0].selector",
        "Required value",
        Set("spec.endpoints[0]", {}),
    ),
    rejected(
        "A selector with no labels is rejected",
        MS,
        "spec.endpoints[0].selector.matchLabels",
        "must have at least 1 entries",
        Set("spec.endpoints[0].selector.matchLabels", {}),
    ),
    rejected(
        "An unknown field in a service endpoint is rejected",
        MS,
        "spec.endpoints[0].wieght",
        'unknown field "wieght"',
        Set("spec.endpoints[0].wieght", 5),
    ),
    rejected(
        "A service endpoint weight of 0 is rejected",
        MS,
        "spec.endpoints[0].weight",
        "must be greater than or equal to 1",
        Set("spec.endpoints[0].weight", 0),
    ),
    rejected(
        "A service endpoint weight above 1000 is rejected",
        MS,
        "spec.endpoints[0].weight",
        "must be less than or equal to 1000",
        Set("spec.endpoints[0].weight", 1001),
    ),
    rejected(
        "A negative service endpoint priority is rejected",
        MS,
        "spec.endpoints[0].priority",
        "must be greater than or equal to 0",
        Set("spec.endpoints[0].priority", -1),
    ),
    rejected(
        "A service endpoint priority above 9 is rejected",
        MS,
        "spec.endpoints[0].priority",
        "must be less than or equal to 9",
        Set("spec.endpoints[0].priority", 10),
    ),
    rejected(
        "A service endpoint maxInFlight of 0 is rejected",
        MS,
        "spec.endpoints[0].maxInFlight",
        "must be greater than or equal to 1",
        Set("spec.endpoints[0].maxInFlight", 0),
    ),
    rejected(
        "A scaleToZero hold timeout of 0 is rejected",
        MS,
        "spec.scaleToZero.holdTimeoutSeconds",
        "must be greater than or equal to 1",
        Set("spec.scaleToZero", {"holdTimeoutSeconds": 0}),
    ),
    rejected(
        "A scaleToZero hold timeout above an hour is rejected",
        MS,
        "spec.scaleToZero.holdTimeoutSeconds",
        "must be less than or equal to 3600",
        Set("spec.scaleToZero", {"holdTimeoutSeconds": 3601}),
    ),
    rejected(
        "A scaleToZero bound of 0 held requests is rejected",
        MS,
        "spec.scaleToZero.maxHeldRequests",
        "must be greater than or equal to 1",
        Set("spec.scaleToZero", {"maxHeldRequests": 0}),
    ),
    rejected(
        "An unknown scaleToZero field is rejected",
        MS,
        "spec.scaleToZero.holdTimeout",
        'unknown field "holdTimeout"',
        Set("spec.scaleToZero", {"holdTimeout": 30}),
    ),
    # ------------------------------------------------------------- ModelEndpoint
    rejected(
        "An endpoint without a url is rejected",
        ME,
        "spec.url",
        "Required value",
        Delete("spec.url"),
    ),
    rejected(
        "A url that is not http or https is rejected",
        ME,
        "spec.url",
        "url must start with http:// or https://",
        Set("spec.url", "ftp://x/"),
    ),
    rejected(
        "A rewritePath without a leading slash is rejected",
        ME,
        "spec.rewritePath",
        "rewritePath must start with /",
        Set("spec.rewritePath", "v1/"),
    ),
    # ---------------------------------------------------------------- ModelCache
    rejected(
        "A cache source other than HuggingFace is rejected",
        MC,
        "spec.source",
        'Unsupported value: "S3"',
        Set("spec.source", "S3"),
    ),
    rejected(
        "A cache without a source is rejected",
        MC,
        "spec.source",
        "Required value",
        Delete("spec.source"),
    ),
    rejected(
        "Source HuggingFace without a huggingFace block is rejected",
        MC,
        "spec",
        "source HuggingFace needs spec.huggingFace",
        Delete("spec.huggingFace"),
    ),
    rejected(
        "A Hugging Face source without a repo is rejected",
        MC,
        "spec.huggingFace.repo",
        "Required value",
        Delete("spec.huggingFace.repo"),
    ),
    rejected(
        "A cache of zero GiB is rejected",
        MC,
        "spec.huggingFace.sizeGiB",
        "must be greater than or equal to 1",
        Set("spec.huggingFace.sizeGiB", 0),
    ),
    rejected(
        "An auth secret without a name is rejected",
        MC,
        "spec.huggingFace.authSecret.name",
        "Required value",
        Set("spec.huggingFace.authSecret", {"key": "HF_TOKEN"}),
    ),
    rejected(
        "An unknown field in a Hugging Face source is rejected",
        MC,
        "spec.huggingFace.branch",
        'unknown field "branch"',
        Set("spec.huggingFace.branch", "main"),
    ),
]

ACCEPTED = [
    accepted("A Synthetic device needs no deviceClassName", IC),
    accepted(
        "An attribute of each type is accepted",
        IC,
        Set(
            f"{DEV0}.attributes",
            {
                "architecture": {"string": "Hopper"},
                "nvlink": {"bool": True},
                "sms": {"int": 132},
                "cudaComputeCapability": {"version": "9.0.0"},
            },
        ),
    ),
    accepted(
        "A domain-prefixed attribute name is accepted",
        IC,
        Set(f"{DEV0}.attributes", {"gpu.nvidia.com/architecture": {"string": "Hopper"}}),
    ),
    accepted("An integer capacity is accepted", IC, Set(f"{DEV0}.capacity.memory.value", 8)),
    accepted("A class without provisioning is accepted", IC, Delete("spec.provisioning")),
    accepted("An empty scaleToZero takes its defaults", MS, Set("spec.scaleToZero", {})),
    accepted(
        "An Exists toleration without a key tolerates every taint",
        MD,
        Set("spec.tolerations", [{"operator": "Exists"}]),
    ),
    accepted(
        "Tolerations of either shape are accepted",
        MD,
        Set(
            "spec.tolerations",
            [
                {"key": "maintenance", "value": "true", "effect": "NoExecute"},
                {"key": "example.com/dedicated", "operator": "Exists"},
            ],
        ),
    ),
    accepted(
        "One key may taint a cluster with both effects",
        CL,
        Set(
            "spec.taints",
            [
                {"key": "maintenance", "value": "true", "effect": "NoSchedule"},
                {"key": "maintenance", "effect": "NoExecute"},
            ],
        ),
    ),
    accepted(
        "A ModelDeployment name of 63 characters is accepted", MD, Set("metadata.name", "d" * 63)
    ),
    accepted(
        "An InferenceCluster name of 63 characters is accepted", CL, Set("metadata.name", "c" * 63)
    ),
    accepted(
        "A ModelEndpoint name of 253 characters is accepted", ME, Set("metadata.name", "e" * 253)
    ),
    accepted(
        "An EKS cluster with a capacity block is accepted",
        CL,
        Set("spec.cluster", {"source": "EKS", "eks": {"region": "us-east-2"}}),
        Set(f"{POOL0}.capacityBlock", {"capacityReservationId": "cr-0123456789abcdef0"}),
    ),
    accepted(
        "An existing cluster with identity and cache storage is accepted",
        CL,
        Set(
            "spec.cluster",
            {
                "source": "Existing",
                "existing": {
                    "secretRef": {"name": "kc", "key": "kubeconfig"},
                    "identitySecretRef": {
                        "name": "sa",
                        "key": "credentials.json",
                        "type": "NebiusServiceAccountCredentials",
                    },
                    "cache": {"storageClassName": "weka-rwx"},
                },
            },
        ),
    ),
    accepted("Equal min and max node counts are accepted", CL, Set(f"{POOL0}.minNodeCount", 4)),
    accepted(
        "A gateway without a load balancer is accepted",
        GW,
        Delete("spec.traefik.loadBalancer"),
        Delete("spec.traefik.metallb"),
    ),
    accepted("Zero replicas scale a deployment to zero", MD, Set("spec.replicas", 0)),
    accepted("Fifty thousand replicas are accepted", MD, Set("spec.replicas", 50000)),
    accepted("A Leader with one Worker is accepted", MD, Set(f"{ENG0}.members", GANG)),
    accepted(
        "A Leader with two Worker members is accepted",
        MD,
        Set(f"{ENG0}.members", [*GANG, member("Worker", worker={"nodes": 2})]),
    ),
    accepted("A member without a node selector is accepted", MD, Delete(f"{MEM0}.nodeSelector")),
    accepted(
        "PrefillDecode with one Prefill and one Decode engine is accepted",
        MD,
        PD,
        Set(f"{ENG0}.phase", "Prefill"),
        Set("spec.engines[1]", engine("decode", phase="Decode")),
    ),
    accepted(
        "A template keeps any pod fields",
        MD,
        Set(
            f"{MEM0}.template",
            {"metadata": {"labels": {"a": "b"}}, "spec": {"anything": [1, {"x": None}]}},
        ),
    ),
    accepted(
        "A deployment with a status is accepted",
        MD,
        Set(
            "status",
            {
                "replicas": 1,
                "readyReplicas": 1,
                "desiredReplicas": 1,
                "selector": "modelplane.ai/deployment=qwen",
                "observedGeneration": 3,
            },
        ),
    ),
    accepted(
        "A ModelService may select on two labels",
        MS,
        Set(
            "spec.endpoints[0].selector.matchLabels",
            {"modelplane.ai/deployment": "qwen", "modelplane.ai/cluster": "gke-us"},
        ),
    ),
    accepted(
        "A service endpoint weight of 19 is accepted", MS, Set("spec.endpoints[0].weight", 19)
    ),
    accepted("An http url is accepted", ME, Set("spec.url", "http://10.0.1.50/ml-team/q/")),
    accepted(
        "A cache with a cluster selector is accepted",
        MC,
        Set("spec.clusterSelector", {"matchLabels": {"modelplane.ai/tier": "frontier"}}),
    ),
]


@pytest.mark.parametrize("case", REJECTED, ids=[c.name for c in REJECTED])
def test_an_invalid_object_is_rejected_with_the_rules_message(case: Rejected) -> None:
    _, errors = validate(edited(valid(case.kind), *case.edits))
    assert len(errors) == 1, [str(e) for e in errors]
    assert errors[0].path == case.path
    assert case.message in errors[0].message


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.name for c in ACCEPTED])
def test_a_valid_variation_is_accepted(case: Accepted) -> None:
    _, errors = validate(edited(valid(case.kind), *case.edits))
    assert [str(e) for e in errors] == []


@pytest.mark.parametrize("kind", sorted({c.kind for c in REJECTED}))
def test_every_base_object_is_valid(kind: str) -> None:
    assert validate(valid(kind))[1] == []


def test_the_cases_cover_every_kind() -> None:
    assert {c.kind for c in REJECTED} == {IC, CL, GW, MD, MR, MS, ME, MC}
