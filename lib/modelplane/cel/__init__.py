"""The Kubernetes DRA device-selector CEL environment (Kubernetes 1.36 semantics).

``compile_selector(expr)`` checks an expression the way the kube-scheduler's
DRA allocator does (result must be bool, known functions and fields, typed
operators) and caches the result per process; ``matches(selector, device)``
evaluates it against one device and never raises.  See
``docs/cel-divergences.md`` for the documented differences from Go.
"""

from modelplane.cel.model import Attribute, AttributeKind, Device, SelectorError, Verdict
from modelplane.cel.selector import Selector, compile_selector, matches

__all__ = [
    "Attribute",
    "AttributeKind",
    "Device",
    "Selector",
    "SelectorError",
    "Verdict",
    "compile_selector",
    "matches",
]
