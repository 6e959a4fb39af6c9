"""The modelplane.ai/v1alpha1 API, the single source of truth for CRDs and API names.

Guarantees: ``KINDS`` lists every kind of the group once, in a fixed order, so
generated output is deterministic.
"""

from __future__ import annotations

from tools.apigen.api.common import API_VERSION, GROUP, OBJECT_META, VERSION
from tools.apigen.api.models import MODEL_DEPLOYMENT, MODEL_REPLICA
from tools.apigen.api.platform import INFERENCE_CLASS, INFERENCE_CLUSTER, INFERENCE_GATEWAY
from tools.apigen.api.serving import MODEL_CACHE, MODEL_ENDPOINT, MODEL_SERVICE
from tools.apigen.dsl import Kind

KINDS: tuple[Kind, ...] = (
    INFERENCE_CLASS,
    INFERENCE_CLUSTER,
    INFERENCE_GATEWAY,
    MODEL_DEPLOYMENT,
    MODEL_REPLICA,
    MODEL_SERVICE,
    MODEL_ENDPOINT,
    MODEL_CACHE,
)

__all__ = ["API_VERSION", "GROUP", "KINDS", "OBJECT_META", "VERSION"]
