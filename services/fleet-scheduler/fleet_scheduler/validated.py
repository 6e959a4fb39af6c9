"""Validation results remembered per object version, so a pass over unchanged objects is cheap.

`ValidationCache` stands in for `modelplane.api.validation.validate` in
`modelplane.scheduling.offline.plan` (its `validator`): for an object with a
`metadata.uid` and `metadata.resourceVersion` (what the API server lists) it
validates each version once and answers again from memory; an object without
either (offline input) is validated every time. A resourceVersion names one
version of one object, so a remembered result is exactly what validating again
would give. Each answer is a fresh top-level copy (`plan` sets its `status`),
its errors a fresh list. `retain(objects)` forgets the objects no longer
observed, so memory follows the fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelplane.api.validation import validate
from modelplane.scheduling.offline import Validate

Result = tuple[dict[str, Any], list[Any]]


def _version(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    return (str(uid), str(version)) if uid and version else None


class ValidationCache:
    def __init__(self, check: Validate = validate) -> None:
        self.check = check
        self.results: dict[str, tuple[str, dict[str, Any], list[Any]]] = {}
        """uid -> (resourceVersion, defaulted object, errors) of its last validation"""

    def __call__(self, obj: Mapping[str, Any]) -> Result:
        version = _version(obj)
        if version is None:
            return self.check(obj)
        uid, resource_version = version
        known = self.results.get(uid)
        if known is None or known[0] != resource_version:
            defaulted, errors = self.check(obj)
            known = self.results[uid] = (resource_version, defaulted, errors)
        return dict(known[1]), list(known[2])

    def retain(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Forget every object not among `objects`."""
        observed = {v[0] for v in map(_version, objects) if v is not None}
        for uid in [u for u in self.results if u not in observed]:
            del self.results[uid]
