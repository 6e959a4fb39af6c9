"""The kinds around a deployment: ModelService, ModelEndpoint and ModelCache.

Guarantees: each schema accepts every seed manifest of its kind as written; URL
and path rules and the cache's source discriminator are CEL with plain messages.
"""

from __future__ import annotations

from tools.apigen.api.common import (
    ADDRESS,
    AGE,
    CLUSTER_SELECTOR,
    CONDITIONS,
    DNS_SUBDOMAIN,
    LABEL_VALUE,
    condition_column,
    observed_generation,
)
from tools.apigen.dsl import Column, Field, Int, Kind, ListOf, MapOf, Obj, Rule, Str

# ------------------------------------------------------------------ ModelService

ENDPOINT_SELECTOR = Obj(
    "EndpointSelector",
    "Selects ModelEndpoints by their labels.",
    (
        Field(
            "matchLabels",
            MapOf(LABEL_VALUE, max_properties=32, min_properties=1),
            "Labels an endpoint must carry, every one with exactly this value, for example "
            "modelplane.ai/deployment: qwen.",
            required=True,
        ),
    ),
)

SCALE_TO_ZERO = Obj(
    "ScaleToZero",
    "How requests wait while the service has no endpoint.",
    (
        Field(
            "holdTimeoutSeconds",
            Int(minimum=1, maximum=3600),
            "How long a request is held waiting for an endpoint (GPU engines start slowly); "
            "past it the request is answered 503 with Retry-After.",
            default=600,
        ),
        Field(
            "maxHeldRequests",
            Int(minimum=1, maximum=100000),
            "At most this many requests of the service are held at once (per activator); "
            "one more is answered 429 with Retry-After.",
            default=256,
        ),
    ),
)
SCALE_TO_ZERO_DOC = (
    "Hold requests while the service is at zero. While every endpoint of the service is gone "
    "(its deployments scaled to zero, for example by KEDA), its requests are held by the "
    "activator up to holdTimeoutSeconds and answered as soon as an endpoint is Ready; past "
    "the timeout they are answered 503 with Retry-After, beyond maxHeldRequests 429. "
    "Without this field a service without endpoints answers 503 at once."
)

MODEL_SERVICE = Kind(
    kind="ModelService",
    plural="modelservices",
    short_names=("ms",),
    scope="Namespaced",
    doc="A ModelService is one stable OpenAI-compatible address, http://<gateway>/<namespace>/"
    "<name>, load-balanced over every ModelEndpoint its selectors match.",
    spec=Obj(
        "ModelServiceSpec",
        "What the service routes to.",
        (
            Field(
                "endpoints",
                ListOf(
                    Obj(
                        "ServiceEndpoint",
                        "One group of endpoints the service routes to.",
                        (
                            Field(
                                "selector",
                                ENDPOINT_SELECTOR,
                                "Which ModelEndpoints this entry adds.",
                                required=True,
                            ),
                            Field(
                                "weight",
                                Int(minimum=1, maximum=1000),
                                "This entry's share of the traffic, relative to the other "
                                "entries' weights, spread evenly over its endpoints; an entry "
                                "with no routable endpoint gets none (its share goes to the "
                                "others). Remove an entry to stop its traffic.",
                                default=1,
                            ),
                            Field(
                                "priority",
                                Int(minimum=0, maximum=9),
                                "The order in which entries take traffic: the entries of the "
                                "lowest priority with a routable endpoint share it by weight; "
                                "an entry of a higher priority (a fallback, for example an "
                                "external provider at 1) gets a request only when every entry "
                                "before it has no routable endpoint (failover) or answers it "
                                "429, 500 or 502-504 (overflow: overloaded or failing).",
                                default=0,
                            ),
                            Field(
                                "maxInFlight",
                                Int(minimum=1, maximum=100000),
                                "At most this many of the service's requests in flight at "
                                "each endpoint of this entry (set it to what the endpoint runs "
                                "at once: engines queue the rest instead of refusing it); one "
                                "more is answered 429 by the front door, which goes to the "
                                "next priority if there is one. Unset: no bound.",
                            ),
                        ),
                    ),
                    max_items=16,
                    min_items=1,
                ),
                "Entries whose matched endpoints the service routes to, each entry with its "
                "share of the traffic (weight) and its place in the fallback order (priority).",
                required=True,
            ),
            Field("scaleToZero", SCALE_TO_ZERO, SCALE_TO_ZERO_DOC),
        ),
    ),
    status=Obj(
        "ModelServiceStatus",
        "The observed state of the service.",
        (
            Field(
                "address",
                ADDRESS,
                "The service's base URL; clients append /v1/... to it.",
            ),
            CONDITIONS,
            observed_generation("service"),
        ),
    ),
    columns=(
        Column("Address", "string", ".status.address", "The service's base URL."),
        AGE,
    ),
)

# ----------------------------------------------------------------- ModelEndpoint

MODEL_ENDPOINT = Kind(
    kind="ModelEndpoint",
    plural="modelendpoints",
    short_names=("me",),
    scope="Namespaced",
    doc="A ModelEndpoint is one reachable inference backend a ModelService can route to: a "
    "ready replica (created by Modelplane) or an external OpenAI-compatible provider.",
    spec=Obj(
        "ModelEndpointSpec",
        "Where the backend is.",
        (
            Field(
                "url",
                Str(max_length=2048, min_length=1),
                "The backend's base URL, http:// or https://.",
                required=True,
            ),
            Field(
                "rewritePath",
                Str(max_length=1024, min_length=1),
                "The path that replaces the service prefix /<namespace>/<service>/ on the way "
                "to the backend.",
                default="/",
            ),
        ),
        rules=(
            Rule(
                "self.url.startsWith('http://') || self.url.startsWith('https://')",
                "url must start with http:// or https://",
                field_path=".url",
            ),
            Rule(
                "self.rewritePath.startsWith('/')",
                "rewritePath must start with /",
                field_path=".rewritePath",
            ),
        ),
    ),
    status=Obj(
        "ModelEndpointStatus",
        "The observed state of the endpoint.",
        (CONDITIONS, observed_generation("endpoint")),
    ),
    columns=(
        Column("URL", "string", ".spec.url", "The backend's base URL."),
        AGE,
    ),
)

# -------------------------------------------------------------------- ModelCache

HUGGING_FACE = Obj(
    "HuggingFaceSource",
    "A model repository on Hugging Face.",
    (
        Field(
            "repo",
            Str(max_length=256, min_length=1, pattern=r"^[A-Za-z0-9][-_.A-Za-z0-9/]*$"),
            "The repository id, for example Qwen/Qwen3-Coder-480B-A35B-Instruct.",
            required=True,
        ),
        Field(
            "revision",
            Str(max_length=256, min_length=1),
            "A branch, tag or commit. Unset: the default branch.",
        ),
        Field(
            "sizeGiB",
            Int(minimum=1, maximum=1048576),
            "Storage for the weights on each cluster, in GiB; at least the model's size.",
        ),
        Field(
            "authSecret",
            Obj(
                "HuggingFaceAuthSecret",
                "A Secret in the cache's namespace holding a Hugging Face token.",
                (
                    Field("name", DNS_SUBDOMAIN, "The Secret's name.", required=True),
                    Field(
                        "key",
                        Str(max_length=253, min_length=1),
                        "The key inside the Secret that holds the token.",
                        default="HF_TOKEN",
                    ),
                ),
            ),
            "The token for gated or private repositories, propagated to every cluster.",
        ),
    ),
)

CLUSTER_CACHE_STATUS = Obj(
    "ClusterCacheStatus",
    "The cache's state on one cluster.",
    (
        Field("clusterName", DNS_SUBDOMAIN, "The InferenceCluster.", required=True),
        Field(
            "phase",
            Str(enum=("Pending", "Hydrating", "Ready", "Failed")),
            "Pending, Hydrating, Ready or Failed.",
        ),
        Field("message", Str(max_length=4096), "Details of the current phase."),
        Field("bytesDone", Int(minimum=0), "Bytes of the weights on the cluster's volume."),
        Field("bytesTotal", Int(minimum=0), "Bytes of the weights in all."),
        Field("commit", Str(max_length=64), "The commit the revision resolved to."),
    ),
)

MODEL_CACHE = Kind(
    kind="ModelCache",
    plural="modelcaches",
    short_names=("mc",),
    scope="Namespaced",
    doc="A ModelCache stages a model's weights once per cluster on ReadWriteMany storage; "
    "deployments that reference it mount the weights at /mnt/models.",
    spec=Obj(
        "ModelCacheSpec",
        "What to cache and where.",
        (
            Field(
                "source",
                Str(enum=("HuggingFace",)),
                "Where the weights come from; selects the block of the same name. "
                "HuggingFace is the only source today.",
                required=True,
            ),
            Field(
                "huggingFace",
                HUGGING_FACE,
                "The Hugging Face repository; set when source is HuggingFace.",
            ),
            Field(
                "clusterSelector",
                CLUSTER_SELECTOR,
                "Stages the cache only on clusters with these labels. Unset: every cluster.",
            ),
        ),
        rules=(
            Rule(
                "self.source != 'HuggingFace' || has(self.huggingFace)",
                "source HuggingFace needs spec.huggingFace with a repo",
            ),
            Rule(
                "!has(self.huggingFace) || self.source == 'HuggingFace'",
                "huggingFace is only valid when source is HuggingFace",
                field_path=".huggingFace",
            ),
        ),
    ),
    status=Obj(
        "ModelCacheStatus",
        "The observed state of the cache.",
        (
            CONDITIONS,
            observed_generation("cache"),
            Field(
                "clusters",
                ListOf(
                    CLUSTER_CACHE_STATUS,
                    max_items=256,
                    list_type="map",
                    map_keys=("clusterName",),
                ),
                "The cache's state on each cluster it stages to.",
            ),
            Field(
                "readyClusters",
                Str(max_length=32),
                "Clusters of the footprint where the cache is Ready, out of all: 1/2.",
            ),
            Field(
                "progress",
                Str(max_length=32),
                "Bytes staged across the footprint, as a share of the total: 45%.",
            ),
        ),
    ),
    columns=(
        Column("Source", "string", ".spec.source", "Where the weights come from."),
        Column("Size", "integer", ".spec.huggingFace.sizeGiB", "GiB of storage per cluster."),
        Column("Clusters", "string", ".status.readyClusters", "Ready clusters out of all."),
        Column("Progress", "string", ".status.progress", "Bytes staged, as a share."),
        condition_column("Ready", "Ready", "Whether the cache is staged."),
        AGE,
    ),
)
