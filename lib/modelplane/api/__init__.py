"""The modelplane.ai/v1alpha1 API: generated types, offline validation, manifest loading.

``modelplane.api.types`` holds the generated dataclasses (one per kind and
struct); ``validate`` defaults and checks an object exactly as the generated
CRDs tell the API server to; ``load_manifests`` reads YAML/JSON files into typed
objects or errors.

Guarantees: everything here derives from tools/apigen/api, through the
committed crds/ and types module, which CI checks are fresh.
"""

from __future__ import annotations

from modelplane.api.manifests import Document, Loaded, Source, load_manifests, load_paths
from modelplane.api.types import (
    API_VERSION,
    GROUP,
    KIND_TYPES,
    VERSION,
    ApiObject,
    InferenceClass,
    InferenceCluster,
    InferenceGateway,
    ModelCache,
    ModelDeployment,
    ModelEndpoint,
    ModelReplica,
    ModelService,
)
from modelplane.api.validation import FieldError, Validator, validate

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND_TYPES",
    "VERSION",
    "ApiObject",
    "Document",
    "FieldError",
    "InferenceClass",
    "InferenceCluster",
    "InferenceGateway",
    "Loaded",
    "ModelCache",
    "ModelDeployment",
    "ModelEndpoint",
    "ModelReplica",
    "ModelService",
    "Source",
    "Validator",
    "load_manifests",
    "load_paths",
    "validate",
]
