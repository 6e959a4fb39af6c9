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
