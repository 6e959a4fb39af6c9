"""The modelplane.ai/v1alpha1 API: its names, offline validation, manifest loading.

``validate`` defaults and checks an object exactly as the generated CRDs tell the
API server to; ``load_manifests`` reads YAML/JSON files into validated, defaulted
objects or errors; ``modelplane.api.names`` holds the group, version and kinds.

Objects are plain dicts everywhere, no generated classes. Every controller
observes objects as the API server and its informer cache hand them over (dicts)
and reads the few fields each decision needs into its own small model (the
scheduler's ``modelplane.scheduling.snapshot``, for instance); a generated
dataclass per kind beside that was a second model of the same objects, used
by none of the services, only by the local fleet's harness, and it cost a
tenth of a second to import in every process. So only the names are generated;
what validates an object is the CRD schema itself (``crds/``), read at run time,
and the one reading of a kind's fields lives next to the decision that uses it.

Guarantees: everything here derives from tools/apigen/api, through the
committed crds/ and names module, which CI checks are fresh.
"""

from __future__ import annotations

from modelplane.api.manifests import Document, Loaded, Source, load_manifests, load_paths
from modelplane.api.names import API_VERSION, GROUP, KINDS, VERSION
from modelplane.api.validation import FieldError, Validator, validate

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "Document",
    "FieldError",
    "Loaded",
    "Source",
    "Validator",
    "load_manifests",
    "load_paths",
    "validate",
]
