"""Structs and string shapes shared by several modelplane.ai kinds.

Guarantees: every shared struct is defined once here, so a struct that appears
in two kinds (conditions, secret and object references, label selectors) has one
schema and one Python class.
"""

from __future__ import annotations

from tools.apigen.dsl import Bool, Column, Field, Int, ListOf, MapOf, Obj, Rule, Str

GROUP = "modelplane.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL = Str(max_length=63, min_length=1, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = Str(
    max_length=253,
    min_length=1,
    pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
)
SHORT_TEXT = Str(max_length=256)
LABEL_VALUE = Str(max_length=63)
ADDRESS = Str(max_length=2048)
CEL_EXPRESSION = Str(max_length=10240, min_length=1)

# A DRA qualified name: a C identifier, optionally prefixed by a DNS subdomain and "/".
# No backslashes: the pattern sits inside a CEL string literal, where \. is not an escape.
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z_][A-Za-z0-9_]*$"
)


def qualified_keys(what: str) -> Rule:
    """A rule on a map whose keys are DRA attribute or capacity names."""
    return Rule(
        rule=f"self.all(k, size(k) <= 96 && k.matches('{QUALIFIED_NAME}'))",
        message=(
            f"{what} names are a C identifier (for example memory), optionally prefixed "
            "by a DNS domain and a slash (for example gpu.nvidia.com/memory)"
        ),
    )


def status_field(doc: str) -> Field:
    return Field("status", Str(enum=("True", "False", "Unknown")), doc, required=True)


CONDITION = Obj(
    "Condition",
    "One aspect of the object's current state, in the standard Kubernetes condition shape.",
    (
        Field(
            "type",
            Str(
                max_length=316,
                pattern=(
                    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                ),
            ),
            "The aspect this condition reports, in CamelCase (for example Ready or Synced).",
            required=True,
        ),
        status_field("Whether the condition holds: True, False or Unknown."),
        Field(
            "observedGeneration",
            Int(minimum=0),
            "The metadata.generation of the object this condition was computed from.",
        ),
        Field(
            "lastTransitionTime",
            Str(format="date-time"),
            "When the condition last changed status (RFC 3339).",
            required=True,
        ),
        Field(
            "reason",
            Str(
                max_length=1024,
                min_length=1,
                pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            ),
            "A CamelCase, machine-readable cause of the last transition.",
            required=True,
        ),
        Field(
            "message",
            Str(max_length=32768),
            "A human-readable explanation of the last transition, naming objects and fields.",
            required=True,
        ),
    ),
)

CONDITIONS = Field(
    "conditions",
    ListOf(CONDITION, max_items=16, list_type="map", map_keys=("type",)),
    "The object's current conditions, at most one per type.",
)


def observed_generation(what: str = "object") -> Field:
    return Field(
        "observedGeneration",
        Int(minimum=0),
        f"The metadata.generation of the {what} that this status was computed from.",
    )


LOCAL_OBJECT_REFERENCE = Obj(
    "LocalObjectReference",
    "A reference to an object of a known kind in the same namespace.",
    (Field("name", DNS_SUBDOMAIN, "The referenced object's name.", required=True),),
)

CLUSTER_SELECTOR = Obj(
    "ClusterSelector",
    "Selects InferenceClusters by their labels. An empty selector matches every cluster.",
    (
        Field(
            "matchLabels",
            MapOf(LABEL_VALUE, max_properties=32),
            "Labels a cluster must carry, every one with exactly this value.",
        ),
    ),
)

OWNER_REFERENCE = Obj(
    "OwnerReference",
    "An object that owns this one; the owned object is garbage collected with it.",
    (
        Field("apiVersion", Str(), "The owner's API version.", required=True),
        Field("kind", Str(), "The owner's kind.", required=True),
        Field("name", Str(), "The owner's name.", required=True),
        Field("uid", Str(), "The owner's UID.", required=True),
        Field("controller", Bool(), "Whether the owner is the managing controller."),
        Field(
            "blockOwnerDeletion",
            Bool(),
            "Whether the owner cannot be deleted before this object is.",
        ),
    ),
)

OBJECT_META = Obj(
    "ObjectMeta",
    "Standard Kubernetes object metadata.",
    (
        Field("name", Str(), "The object's name, unique within its namespace (or cluster)."),
        Field("generateName", Str(), "A prefix the API server completes into a unique name."),
        Field("namespace", Str(), "The namespace of a namespaced object."),
        Field("labels", MapOf(Str(), max_properties=256), "Labels for selection."),
        Field("annotations", MapOf(Str(), max_properties=256), "Unstructured annotations."),
        Field("uid", Str(), "The object's unique id, set by the API server."),
        Field("resourceVersion", Str(), "The version of the object, for optimistic writes."),
        Field("generation", Int(), "The spec generation, incremented on each spec change."),
        Field("creationTimestamp", Str(format="date-time"), "When the object was created."),
        Field(
            "deletionTimestamp",
            Str(format="date-time"),
            "When the object was asked to be deleted.",
        ),
        Field("finalizers", ListOf(Str(), max_items=64), "Finalizers that hold deletion."),
        Field(
            "ownerReferences",
            ListOf(OWNER_REFERENCE, max_items=64),
            "The objects this one belongs to.",
        ),
    ),
    opaque=True,
)


def condition_column(name: str, condition: str, doc: str) -> Column:
    return Column(name, "string", f'.status.conditions[?(@.type=="{condition}")].status', doc)


AGE = Column(
    "Age",
    "date",
    ".metadata.creationTimestamp",
    "Time since the object was created.",
)


# ---------------------------------------------------------------- taints and tolerations
# The Kubernetes taint model one scope up: a tainted InferenceCluster repels deployments
# that do not tolerate the taint (NoSchedule: no new replicas; NoExecute: existing ones drain).

TAINT_EFFECTS = ("NoSchedule", "NoExecute")
# A label key: an optional DNS-subdomain prefix and a slash, then a name of at most 63.
LABEL_KEY = Str(
    max_length=316,
    min_length=1,
    pattern=(
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    ),
)
LABEL_VALUE_PATTERN = Str(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

TAINT = Obj(
    "ClusterTaint",
    "A taint on an InferenceCluster: deployments that do not tolerate it keep off the cluster.",
    (
        Field("key", LABEL_KEY, "The taint's key, for example maintenance.", required=True),
        Field("value", LABEL_VALUE_PATTERN, "The taint's value; optional."),
        Field(
            "effect",
            Str(enum=TAINT_EFFECTS),
            "NoSchedule: no new replicas of deployments that do not tolerate it; replicas "
            "already there stay. NoExecute: also drains those replicas (endpoint first), and "
            "the scheduler places them on other clusters.",
            required=True,
        ),
    ),
)

TOLERATION = Obj(
    "Toleration",
    "Lets a deployment's replicas onto clusters with a matching taint.",
    (
        Field(
            "key",
            LABEL_KEY,
            "The taint key it tolerates; empty with operator Exists tolerates every taint.",
        ),
        Field(
            "operator",
            Str(enum=("Equal", "Exists")),
            "Equal: the taint's value must equal value. Exists: any value (value must be empty).",
            default="Equal",
        ),
        Field("value", LABEL_VALUE_PATTERN, "The value an Equal toleration matches."),
        Field(
            "effect",
            Str(enum=TAINT_EFFECTS),
            "The effect it tolerates; empty tolerates both.",
        ),
    ),
    rules=(
        Rule(
            "self.operator != 'Equal' || has(self.key)",
            "an Equal toleration needs a key (use operator Exists to tolerate every taint)",
            field_path=".key",
        ),
        Rule(
            "self.operator != 'Exists' || !has(self.value) || self.value == ''",
            "an Exists toleration matches any value and must not set one",
            field_path=".value",
        ),
    ),
)
