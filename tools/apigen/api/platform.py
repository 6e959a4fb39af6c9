"""The platform team's kinds: InferenceClass, InferenceCluster, InferenceGateway.

Guarantees: each schema accepts every seed manifest of its kind as written and
states its cross-field rules (discriminated blocks, pool bounds, the gateway
singleton) as CEL with messages that name the fields involved.
"""

from __future__ import annotations

from tools.apigen.api.common import (
    ADDRESS,
    AGE,
    CONDITIONS,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    SHORT_TEXT,
    TAINT,
    condition_column,
    observed_generation,
    qualified_keys,
)
from tools.apigen.dsl import (
    Bool,
    Column,
    Field,
    Int,
    Kind,
    ListOf,
    MapOf,
    Obj,
    Quantity,
    Rule,
    Str,
)

# ---------------------------------------------------------------- InferenceClass

ACCELERATOR = Obj(
    "Accelerator",
    "The accelerator attached to each node of the pool.",
    (
        Field(
            "type",
            Str(max_length=128, min_length=1),
            "The cloud's accelerator type, for example nvidia-l4 or nvidia-h200.",
            required=True,
        ),
        Field(
            "count",
            Int(minimum=1, maximum=64),
            "How many accelerators each node carries.",
            required=True,
        ),
    ),
)

GKE_PROVISIONING = Obj(
    "GKEProvisioning",
    "How to create a GKE node pool of this class.",
    (
        Field(
            "machineType",
            Str(max_length=128, min_length=1),
            "The GCE machine type of each node, for example g2-standard-8.",
            required=True,
        ),
        Field("diskSizeGb", Int(minimum=10, maximum=65536), "Boot disk size of each node in GB."),
        Field("accelerator", ACCELERATOR, "The GPUs attached to each node."),
    ),
)

EKS_PROVISIONING = Obj(
    "EKSProvisioning",
    "How to create an EKS node group of this class.",
    (
        Field(
            "instanceType",
            Str(max_length=128, min_length=1),
            "The EC2 instance type of each node, for example g6.xlarge.",
            required=True,
        ),
        Field("diskSizeGb", Int(minimum=10, maximum=65536), "Root volume size of each node in GB."),
        Field("accelerator", ACCELERATOR, "The GPUs each instance carries."),
    ),
)

PROVISIONING = Obj(
    "Provisioning",
    "How to provision a node pool of this class on a cloud. Omit for existing clusters.",
    (
        Field(
            "provider",
            Str(enum=("GKE", "EKS")),
            "The cloud that provisions pools of this class: GKE or EKS. Selects the "
            "block of the same name.",
            required=True,
        ),
        Field("gke", GKE_PROVISIONING, "The GKE node pool recipe; set when provider is GKE."),
        Field("eks", EKS_PROVISIONING, "The EKS node group recipe; set when provider is EKS."),
    ),
    rules=(
        Rule("self.provider != 'GKE' || has(self.gke)", "provider GKE needs provisioning.gke"),
        Rule("self.provider != 'EKS' || has(self.eks)", "provider EKS needs provisioning.eks"),
        Rule(
            "!has(self.gke) || self.provider == 'GKE'",
            "provisioning.gke is only valid when provider is GKE",
            field_path=".gke",
        ),
        Rule(
            "!has(self.eks) || self.provider == 'EKS'",
            "provisioning.eks is only valid when provider is EKS",
            field_path=".eks",
        ),
    ),
)

ATTRIBUTE_VALUE = Obj(
    "AttributeValue",
    "A typed device attribute. Exactly one of string, bool, int or version is set.",
    (
        Field("string", Str(max_length=64), "A string value.", py="string_value"),
        Field("bool", Bool(), "A boolean value.", py="bool_value"),
        Field("int", Int(), "An integer value.", py="int_value"),
        Field(
            "version",
            Str(
                max_length=64,
                pattern=(
                    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                    r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
                ),
            ),
            "A semantic version such as 9.0.0, compared with semver() in selectors.",
            py="version_value",
        ),
    ),
    rules=(
        Rule(
            "(has(self.string) ? 1 : 0) + (has(self.bool) ? 1 : 0) + (has(self.int) ? 1 : 0)"
            " + (has(self.version) ? 1 : 0) == 1",
            "an attribute sets exactly one of string, bool, int or version",
        ),
    ),
)

CAPACITY_VALUE = Obj(
    "CapacityValue",
    "A device capacity.",
    (
        Field(
            "value",
            Quantity(),
            "The capacity as a Kubernetes quantity, for example 23034Mi; compared with "
            "quantity() in selectors.",
            required=True,
        ),
    ),
)

CLASS_DEVICE = Obj(
    "ClassDevice",
    "One kind of device every node of the pool carries, described the way a DRA driver "
    "publishes it.",
    (
        Field(
            "name",
            DNS_LABEL,
            "The device's name within the class, for example gpu or nic.",
            required=True,
        ),
        Field(
            "claim",
            Str(enum=("DRA", "Synthetic")),
            "DRA: a real DRA driver exposes the device and pods claim it. Synthetic: "
            "described for scheduling only and never claimed.",
            default="DRA",
        ),
        Field(
            "driver",
            DNS_SUBDOMAIN,
            "The driver that owns the device, for example gpu.nvidia.com; also the domain "
            "selectors read attributes and capacity under.",
            required=True,
        ),
        Field(
            "deviceClassName",
            DNS_SUBDOMAIN,
            "The DRA DeviceClass pods claim this device through. Required when claim is DRA.",
        ),
        Field(
            "count",
            Int(minimum=0, maximum=1024),
            "How many of this device each node has.",
            default=1,
        ),
        Field(
            "attributes",
            MapOf(ATTRIBUTE_VALUE, max_properties=32, rules=(qualified_keys("attribute"),)),
            "Typed attributes selectors match on, keyed by name (for example architecture).",
        ),
        Field(
            "capacity",
            MapOf(CAPACITY_VALUE, max_properties=32, rules=(qualified_keys("capacity"),)),
            "Capacities selectors match on, keyed by name (for example memory).",
        ),
    ),
    rules=(
        Rule(
            "self.claim != 'DRA' || has(self.deviceClassName)",
            "a DRA device names its device class: set deviceClassName when claim is DRA",
            field_path=".deviceClassName",
        ),
    ),
)

DEVICES = ListOf(CLASS_DEVICE, max_items=16, min_items=1, list_type="map", map_keys=("name",))

INFERENCE_CLASS = Kind(
    kind="InferenceClass",
    plural="inferenceclasses",
    short_names=("icl",),
    scope="Cluster",
    doc="An InferenceClass is a tested recipe for a GPU node pool: the devices each node "
    "carries, DRA-style, and optionally how to provision such a pool on a cloud.",
    spec=Obj(
        "InferenceClassSpec",
        "The node pool recipe.",
        (
            Field("description", SHORT_TEXT, "A short human-readable summary of the class."),
            Field(
                "provisioning",
                PROVISIONING,
                "How to create a pool of this class on a cloud. Omit for pools that "
                "already exist on a bring-your-own cluster.",
            ),
            Field(
                "devices",
                DEVICES,
                "The devices each node of the pool carries; names are unique.",
                required=True,
            ),
        ),
    ),
    status=Obj(
        "InferenceClassStatus",
        "The observed state of the class.",
        (CONDITIONS, observed_generation("class")),
    ),
    columns=(
        Column("Description", "string", ".spec.description", "The class's summary."),
        AGE,
    ),
)

# -------------------------------------------------------------- InferenceCluster

SECRET_KEY_REFERENCE = Obj(
    "SecretKeyReference",
    "A key of a Secret in the control plane's Modelplane namespace.",
    (
        Field("name", DNS_SUBDOMAIN, "The Secret's name.", required=True),
        Field(
            "key",
            Str(max_length=253, min_length=1),
            "The key inside the Secret that holds the kubeconfig.",
            default="kubeconfig",
        ),
    ),
)

IDENTITY_SECRET_REFERENCE = Obj(
    "IdentitySecretReference",
    "A Secret holding a cloud identity used to authenticate to the cluster.",
    (
        Field("name", DNS_SUBDOMAIN, "The Secret's name.", required=True),
        Field(
            "key",
            Str(max_length=253, min_length=1),
            "The key inside the Secret that holds the credentials.",
            required=True,
        ),
        Field(
            "type",
            Str(max_length=63, min_length=1, pattern=r"^[A-Z][A-Za-z0-9]*$"),
            "The kind of cloud identity, matching the cluster's cloud, for example "
            "GoogleApplicationCredentials or NebiusServiceAccountCredentials.",
            default="GoogleApplicationCredentials",
        ),
    ),
)

CLUSTER = Obj(
    "ClusterSource",
    "Where the cluster comes from: provisioned on GKE or EKS, or an existing cluster.",
    (
        Field(
            "source",
            Str(enum=("GKE", "EKS", "Existing")),
            "GKE or EKS: Modelplane provisions the cluster. Existing: a cluster you run, "
            "reached through a kubeconfig Secret. Selects the block of the same name.",
            required=True,
        ),
        Field(
            "gke",
            Obj(
                "GKEClusterSource",
                "Where to provision the GKE cluster.",
                (
                    Field(
                        "project",
                        Str(max_length=63, min_length=1),
                        "The GCP project ID.",
                        required=True,
                    ),
                    Field(
                        "region",
                        Str(max_length=63, min_length=1),
                        "The GCP region, for example us-central1.",
                        required=True,
                    ),
                ),
            ),
            "The GKE cluster to provision; set when source is GKE.",
        ),
        Field(
            "eks",
            Obj(
                "EKSClusterSource",
                "Where to provision the EKS cluster.",
                (
                    Field(
                        "region",
                        Str(max_length=63, min_length=1),
                        "The AWS region, for example us-west-2.",
                        required=True,
                    ),
                ),
            ),
            "The EKS cluster to provision; set when source is EKS.",
        ),
        Field(
            "existing",
            Obj(
                "ExistingClusterSource",
                "How to reach a cluster you run yourself.",
                (
                    Field(
                        "secretRef",
                        SECRET_KEY_REFERENCE,
                        "The Secret holding the cluster's kubeconfig.",
                        required=True,
                    ),
                    Field(
                        "identitySecretRef",
                        IDENTITY_SECRET_REFERENCE,
                        "Optional cloud identity used instead of a token in the kubeconfig.",
                    ),
                    Field(
                        "cache",
                        Obj(
                            "ClusterCacheStorage",
                            "Storage for ModelCaches on this cluster.",
                            (
                                Field(
                                    "storageClassName",
                                    DNS_SUBDOMAIN,
                                    "A ReadWriteMany StorageClass on the cluster for "
                                    "ModelCache volumes.",
                                ),
                            ),
                        ),
                        "Storage for ModelCaches on this cluster.",
                    ),
                ),
            ),
            "The existing cluster to register; set when source is Existing.",
        ),
    ),
    rules=(
        Rule("self.source != 'GKE' || has(self.gke)", "source GKE needs cluster.gke"),
        Rule("self.source != 'EKS' || has(self.eks)", "source EKS needs cluster.eks"),
        Rule(
            "self.source != 'Existing' || has(self.existing)",
            "source Existing needs cluster.existing.secretRef, a Secret holding the "
            "cluster's kubeconfig",
        ),
        Rule(
            "!has(self.gke) || self.source == 'GKE'",
            "cluster.gke is only valid when source is GKE",
            field_path=".gke",
        ),
        Rule(
            "!has(self.eks) || self.source == 'EKS'",
            "cluster.eks is only valid when source is EKS",
            field_path=".eks",
        ),
        Rule(
            "!has(self.existing) || self.source == 'Existing'",
            "cluster.existing is only valid when source is Existing",
            field_path=".existing",
        ),
    ),
)

NODE_POOL = Obj(
    "NodePool",
    "A pool of identical nodes, described by an InferenceClass.",
    (
        Field(
            "name",
            DNS_LABEL,
            "The pool's name, unique in the cluster. Nodes carry it as the "
            "modelplane.ai/pool label.",
            required=True,
        ),
        Field(
            "className",
            DNS_SUBDOMAIN,
            "The InferenceClass that describes (and provisions) this pool's nodes.",
            required=True,
        ),
        Field(
            "nodeCount",
            Int(minimum=0, maximum=100000),
            "How many nodes the pool has (for provisioned pools, the initial size).",
            required=True,
        ),
        Field(
            "minNodeCount",
            Int(minimum=0, maximum=100000),
            "The autoscaler's lower bound.",
        ),
        Field(
            "maxNodeCount",
            Int(minimum=0, maximum=100000),
            "The autoscaler's upper bound; the scheduler counts this many nodes when set.",
        ),
        Field(
            "zones",
            ListOf(Str(max_length=63, min_length=1), max_items=16, list_type="set"),
            "The zones nodes are placed in.",
        ),
        Field(
            "fabric",
            Str(max_length=63, min_length=1),
            "The interconnect fabric between the pool's nodes, for example EFA.",
        ),
        Field(
            "capacityBlock",
            Obj(
                "CapacityBlock",
                "An EC2 capacity reservation the pool's nodes run in.",
                (
                    Field(
                        "capacityReservationId",
                        Str(max_length=64, pattern=r"^cr-[0-9a-z]+$"),
                        "The reservation ID, for example cr-0123456789abcdef0.",
                        required=True,
                    ),
                ),
            ),
            "An EC2 capacity reservation to launch the pool's nodes in (EKS only).",
        ),
    ),
    rules=(
        Rule(
            "!has(self.minNodeCount) || !has(self.maxNodeCount)"
            " || self.minNodeCount <= self.maxNodeCount",
            "minNodeCount must not exceed maxNodeCount",
            field_path=".minNodeCount",
        ),
    ),
)

POOL_STATUS = Obj(
    "PoolStatus",
    "A node pool as the cluster publishes it to the scheduler.",
    (
        Field("name", DNS_LABEL, "The pool's name.", required=True),
        Field("className", DNS_SUBDOMAIN, "The pool's InferenceClass."),
        Field("nodes", Int(minimum=0), "Nodes the pool has now."),
        Field("freeNodes", Int(minimum=0), "Nodes not charged to any replica (informational)."),
        Field(
            "devices",
            ListOf(CLASS_DEVICE, max_items=16, list_type="map", map_keys=("name",)),
            "The devices each node carries, copied from the class.",
        ),
    ),
)

SCHEDULER_EXTENSION = Obj(
    "SchedulerExtensionStatus",
    "Whether the cluster runs Modelplane's scheduler extension, and how the fleet scheduler "
    "counts its capacity.",
    (
        Field(
            "health",
            Str(enum=("Healthy", "Unhealthy", "Absent")),
            "Healthy: the extender renews its Lease kube-system/modelplane-scheduler-extender; "
            "Unhealthy: the Lease has expired; Absent: there is no such Lease.",
            required=True,
        ),
        Field(
            "accounting",
            Str(enum=("Device", "Node")),
            "Device: the fleet counts devices per node, packed (only while Healthy); Node: a "
            "whole node per pod that claims a device.",
            required=True,
        ),
        Field("message", Str(max_length=1024), "Why, naming the Lease and what was seen."),
    ),
)

INFERENCE_CLUSTER = Kind(
    kind="InferenceCluster",
    # Its name is the value of a label on every replica and endpoint (at most 63).
    name_max_length=63,
    plural="inferenceclusters",
    short_names=("ic",),
    scope="Cluster",
    doc="An InferenceCluster is one Kubernetes cluster of the fleet: provisioned on GKE or "
    "EKS, or an existing cluster, with node pools described by InferenceClasses. Its labels "
    "are what a ModelDeployment's clusterSelector matches.",
    spec=Obj(
        "InferenceClusterSpec",
        "The cluster and its node pools.",
        (
            Field("cluster", CLUSTER, "Where the cluster comes from.", required=True),
            Field(
                "nodePools",
                ListOf(NODE_POOL, max_items=32, min_items=1, list_type="map", map_keys=("name",)),
                "The cluster's GPU node pools; names are unique.",
                required=True,
            ),
            Field(
                "taints",
                ListOf(TAINT, max_items=16, list_type="map", map_keys=("key", "effect")),
                "Taints that keep deployments without a matching toleration off the cluster "
                "(for example maintenance=true:NoExecute drains it before maintenance); one "
                "per key and effect.",
            ),
        ),
        rules=(
            Rule(
                "self.cluster.source == 'EKS' || self.nodePools.all(p, !has(p.capacityBlock))",
                "nodePools[].capacityBlock is an EC2 capacity reservation and is only valid "
                "when cluster.source is EKS",
                field_path=".nodePools",
            ),
        ),
    ),
    status=Obj(
        "InferenceClusterStatus",
        "The observed state of the cluster.",
        (
            CONDITIONS,
            observed_generation("cluster"),
            Field(
                "gatewayAddress",
                ADDRESS,
                "The address of the cluster's inference gateway; empty until it has one.",
            ),
            Field(
                "pools",
                ListOf(POOL_STATUS, max_items=32, list_type="map", map_keys=("name",)),
                "The node pools as published to the scheduler.",
            ),
            Field(
                "schedulerExtension",
                SCHEDULER_EXTENSION,
                "The scheduler extension on the cluster and the accounting mode it allows.",
            ),
        ),
    ),
    columns=(
        Column("Source", "string", ".spec.cluster.source", "GKE, EKS or Existing."),
        condition_column("Ready", "Ready", "Whether the cluster is ready for replicas."),
        Column("Gateway", "string", ".status.gatewayAddress", "The cluster gateway's address."),
        Column(
            "Accounting",
            "string",
            ".status.schedulerExtension.accounting",
            "Device or Node: how the fleet scheduler counts the cluster's capacity.",
        ),
        AGE,
    ),
)

# -------------------------------------------------------------- InferenceGateway

INFERENCE_GATEWAY = Kind(
    kind="InferenceGateway",
    plural="inferencegateways",
    short_names=("ig",),
    scope="Cluster",
    doc="The InferenceGateway is the control plane's front door, one OpenAI-compatible "
    "address for every ModelService. It is a singleton named default.",
    spec=Obj(
        "InferenceGatewaySpec",
        "Which gateway runs the front door and how it is exposed.",
        (
            Field(
                "backend",
                Str(enum=("Traefik",)),
                "The gateway implementation. Traefik is the only value today.",
                default="Traefik",
            ),
            Field(
                "traefik",
                Obj(
                    "TraefikConfig",
                    "Settings of the Traefik backend.",
                    (
                        Field(
                            "version",
                            Str(max_length=64, min_length=1),
                            "The Traefik Helm chart version to install.",
                        ),
                        Field(
                            "loadBalancer",
                            Str(enum=("MetalLB",)),
                            "How the gateway Service gets an external address where the "
                            "cluster has no LoadBalancer controller. Omit on clouds.",
                        ),
                        Field(
                            "metallb",
                            Obj(
                                "MetalLBConfig",
                                "MetalLB settings.",
                                (
                                    Field(
                                        "addressPool",
                                        Str(max_length=256, min_length=1),
                                        "The addresses MetalLB may assign, as a range or "
                                        "CIDR, for example 172.18.255.200-172.18.255.250.",
                                        required=True,
                                    ),
                                ),
                            ),
                            "MetalLB settings; set when loadBalancer is MetalLB.",
                        ),
                    ),
                    rules=(
                        Rule(
                            "!has(self.loadBalancer) || self.loadBalancer != 'MetalLB'"
                            " || has(self.metallb)",
                            "loadBalancer MetalLB needs traefik.metallb.addressPool",
                        ),
                        Rule(
                            "!has(self.metallb) || (has(self.loadBalancer)"
                            " && self.loadBalancer == 'MetalLB')",
                            "traefik.metallb is only valid when loadBalancer is MetalLB",
                            field_path=".metallb",
                        ),
                    ),
                ),
                "Settings of the Traefik backend.",
            ),
            Field(
                "tls",
                Obj(
                    "GatewayTLS",
                    "HTTPS at the front door.",
                    (
                        Field(
                            "secretName",
                            Str(
                                max_length=253,
                                min_length=1,
                                pattern="^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                            ),
                            "A kubernetes.io/tls Secret (tls.crt, tls.key) in the control "
                            "plane's namespace: the front door serves HTTPS with it and "
                            "redirects plain HTTP there (301), and status.address says "
                            "https://.",
                            required=True,
                        ),
                    ),
                ),
                "Serve HTTPS; omit for plain HTTP.",
            ),
            Field(
                "apiKeys",
                Obj(
                    "GatewayAPIKeys",
                    "API keys per caller at the front door.",
                    (
                        Field(
                            "required",
                            Bool(),
                            "Every request needs a key (Authorization: Bearer or x-api-key) "
                            "from a Secret of the API key namespace (gateway-config's "
                            "--api-key-namespace, default modelplane-api-keys) labelled "
                            "modelplane.ai/api-key (data.key, data.services: the "
                            "<namespace>/<name> ModelServices it may use, or *); a missing or "
                            "unknown key is a 401, a key not scoped to the service a 403.",
                        ),
                    ),
                ),
                "API keys; omit (or required: false) for an open front door.",
            ),
        ),
    ),
    status=Obj(
        "InferenceGatewayStatus",
        "The observed state of the gateway.",
        (
            CONDITIONS,
            observed_generation("gateway"),
            Field(
                "address",
                ADDRESS,
                "The gateway's external address, the host of every ModelService URL.",
            ),
        ),
    ),
    columns=(
        Column("Backend", "string", ".spec.backend", "The gateway implementation."),
        Column("Address", "string", ".status.address", "The gateway's external address."),
        AGE,
    ),
    root_rules=(
        Rule(
            "self.metadata.name == 'default'",
            "the InferenceGateway is a singleton and must be named default",
            field_path=".metadata.name",
        ),
    ),
)
