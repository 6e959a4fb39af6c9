"""Offline validation of modelplane.ai/v1alpha1 objects, as the API server would do it.

``validate(obj)`` applies schema defaults, checks the structural schema strictly
(unknown fields are errors) and evaluates every ``x-kubernetes-validations`` rule,
all read from the generated CRDs in ``crds/``. Each kind's schema is also compiled
once into a one-pass fast path (``modelplane.api.accept``) that takes plainly valid
objects; anything it does not take goes through the general walk, which words
every error, so results and messages are the general walk's either way.

Guarantees: the input is never mutated; the returned dict is the defaulted
object (meaningful when there are no errors); every error names the object's
kind and name and the offending field; rules are compiled once per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from modelplane.api.accept import Accept, RejectedError, accepting
from modelplane.api.crds import DEFAULT_CRD_DIR, CrdInfo, crd_info, load_crds
from modelplane.api.names import API_VERSION
from modelplane.api.rules import compile_all, evaluate, holding
from modelplane.api.structural import Issue, apply_defaults, check, copy_json

_NAME_MAX = 253


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an object is invalid.

    ``path`` is the field, for example ``spec.engines[0].members[1].worker``;
    ``kind`` and ``name`` (``namespace/name`` for namespaced objects) say which
    object it belongs to.
    """

    path: str
    message: str
    kind: str = ""
    name: str = ""

    def __str__(self) -> str:
        what = " ".join(p for p in (self.kind, self.name) if p) or "object"
        return f"{what}: {self.path}: {self.message}" if self.path else f"{what}: {self.message}"


def _display_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return ""
    name = meta.get("name") or meta.get("generateName") or ""
    ns = meta.get("namespace")
    return f"{ns}/{name}" if ns and name else str(name)


def _name_max(schema: Mapping[str, Any]) -> int:
    """The kind's bound on metadata.name (63 for kinds whose names become label values)."""
    meta = schema.get("properties", {}).get("metadata", {})
    bound: int = meta.get("properties", {}).get("name", {}).get("maxLength", _NAME_MAX)
    return bound


def _metadata_issues(meta: Any, name_max: int) -> list[Issue]:
    if not isinstance(meta, dict):
        return [("metadata", "Required value: an object with a name")]
    issues: list[Issue] = []
    name = meta.get("name")
    if name is None and not meta.get("generateName"):
        issues.append(("metadata.name", "Required value: name or generateName is required"))
    elif name is not None and (not isinstance(name, str) or not name):
        issues.append(("metadata.name", f"Invalid value: {name!r}: must be a non-empty string"))
    elif name is not None and len(name) > name_max:
        issues.append(("metadata.name", f"Too long: may not be more than {name_max} bytes"))
    for key in ("labels", "annotations"):
        entries = meta.get(key)
        if entries is None:
            continue
        if not isinstance(entries, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            issues.append((f"metadata.{key}", "Invalid value: must map strings to strings"))
    return issues


class Validator:
    """Validates objects against a fixed set of CRDs.

    A kind's rules and fast path are compiled once, on its first object (a rule that
    does not compile raises ``RuleCompileError`` then), so a process that sees four
    kinds does not compile the other kinds' rules."""

    def __init__(self, crds: Iterable[CrdInfo | Mapping[str, Any]]) -> None:
        self._crds: dict[str, CrdInfo] = {}
        for crd in crds:
            info = crd if isinstance(crd, CrdInfo) else crd_info(crd)
            self._crds[info.kind] = info
        self._compiled: dict[str, tuple[Accept, int]] = {}

    @property
    def rule_count(self) -> int:
        """How many rules the CRDs declare; compiles every kind's rules."""
        return sum(compile_all(info.schema) for info in self._crds.values())

    def _compile(self, kind: str) -> tuple[Accept, int]:
        """The kind's fast path and bound on metadata.name, its rules compiled first."""
        compiled = self._compiled.get(kind)
        if compiled is None:
            schema = self._crds[kind].schema
            compile_all(schema)
            accept = accepting(schema, holding, unchecked="metadata")
            compiled = self._compiled[kind] = (accept, _name_max(schema))
        return compiled

    @classmethod
    def from_directory(cls, directory: Path = DEFAULT_CRD_DIR) -> Validator:
        return cls(load_crds(directory).values())

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._crds)

    def crd(self, kind: str) -> CrdInfo:
        return self._crds[kind]

    def validate(self, obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
        """The defaulted object and every error in it (empty when valid)."""
        accepted = self.accepted(obj)
        if accepted is not None:
            return accepted, []
        return self.validate_fully(obj)

    def accepted(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The defaulted object when the compiled fast path finds it plainly valid, else None."""
        if type(obj) is not dict or obj.get("apiVersion") != API_VERSION:
            return None
        kind = obj.get("kind")
        if type(kind) is not str or kind not in self._crds:
            return None
        accept, name_max = self._compile(kind)
        if _metadata_issues(obj.get("metadata"), name_max):
            return None
        try:
            out: dict[str, Any] = accept(obj)
        except RejectedError:
            return None
        return out

    def validate_fully(self, obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
        """``validate`` by the general walk alone, which words every error."""
        if not isinstance(obj, Mapping):
            return {}, [FieldError("", "Invalid value: an object must be a mapping")]
        kind = obj.get("kind")
        name = _display_name(obj)
        label = kind if isinstance(kind, str) else ""
        out = {k: copy_json(v) for k, v in obj.items()}
        if obj.get("apiVersion") != API_VERSION:
            msg = f"Unsupported value: {obj.get('apiVersion')!r}: supported values: {API_VERSION}"
            return out, [FieldError("apiVersion", msg, label, name)]
        if not isinstance(kind, str) or kind not in self._crds:
            known = ", ".join(sorted(self._crds))
            msg = f"Unsupported value: {kind!r}: supported values: {known}"
            return out, [FieldError("kind", msg, label, name)]
        schema = self._crds[kind].schema
        issues = _metadata_issues(out.get("metadata"), self._compile(kind)[1])
        out = apply_defaults(schema, out)
        issues += check(schema, out, "", evaluate, skip=frozenset({"metadata"}))
        return out, [FieldError(path, message, kind, name) for path, message in issues]


@cache
def default_validator() -> Validator:
    """The validator of the repository's generated CRDs (``crds/``), built once."""
    return Validator.from_directory(DEFAULT_CRD_DIR)


def validate(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Defaults and validates one object of a modelplane.ai kind.

    Returns the defaulted object and the list of errors; the list is empty when
    the API server would accept the object.
    """
    return default_validator().validate(obj)
