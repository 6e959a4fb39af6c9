"""Turns ``tools.apigen.api`` kinds into CustomResourceDefinition objects and YAML.

Guarantees: structural schemas (every node typed; ``x-kubernetes-preserve-unknown-fields``
only where the source says ``Preserve``); every field carries its description;
output YAML is deterministic (keys in a fixed order, no timestamps).
"""

from __future__ import annotations

from typing import Any

import yaml

from tools.apigen.api import API_VERSION, GROUP, VERSION
from tools.apigen.dsl import (
    Bool,
    Int,
    Kind,
    ListOf,
    MapOf,
    Obj,
    Preserve,
    Quantity,
    Rule,
    Str,
    Type,
)

# The Kubernetes resource.Quantity pattern, as controller-gen emits it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _rules(rules: tuple[Rule, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in rules:
        entry: dict[str, Any] = {"rule": r.rule, "message": r.message}
        if r.field_path is not None:
            entry["fieldPath"] = r.field_path
        out.append(entry)
    return out


def schema_of(t: Type, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI v3 schema of one type node."""
    s: dict[str, Any] = {}
    if description:
        s["description"] = description
    if isinstance(t, Str):
        s["type"] = "string"
        if t.enum is not None:
            s["enum"] = list(t.enum)
        if t.format is not None:
            s["format"] = t.format
        if t.min_length is not None:
            s["minLength"] = t.min_length
        if t.max_length is not None:
            s["maxLength"] = t.max_length
        elif t.enum is not None:  # bounds the CEL cost estimate of rules reading it
            s["maxLength"] = max(len(v) for v in t.enum)
        if t.pattern is not None:
            s["pattern"] = t.pattern
    elif isinstance(t, Int):
        s["type"] = "integer"
        s["format"] = "int64"
        if t.minimum is not None:
            s["minimum"] = t.minimum
        if t.maximum is not None:
            s["maximum"] = t.maximum
    elif isinstance(t, Bool):
        s["type"] = "boolean"
    elif isinstance(t, Quantity):
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        s["pattern"] = QUANTITY_PATTERN
        s["x-kubernetes-int-or-string"] = True
    elif isinstance(t, Preserve):
        s["type"] = "object"
        s["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(t, ListOf):
        s["type"] = "array"
        s["items"] = schema_of(t.item, t.item.doc if isinstance(t.item, Obj) else None)
        if t.min_items is not None:
            s["minItems"] = t.min_items
        s["maxItems"] = t.max_items
        if t.list_type is not None:
            s["x-kubernetes-list-type"] = t.list_type
        if t.map_keys:
            s["x-kubernetes-list-map-keys"] = list(t.map_keys)
        if t.rules:
            s["x-kubernetes-validations"] = _rules(t.rules)
    elif isinstance(t, MapOf):
        s["type"] = "object"
        s["additionalProperties"] = schema_of(
            t.value, t.value.doc if isinstance(t.value, Obj) else None
        )
        if t.min_properties is not None:
            s["minProperties"] = t.min_properties
        s["maxProperties"] = t.max_properties
        if t.rules:
            s["x-kubernetes-validations"] = _rules(t.rules)
    else:
        s["type"] = "object"
        if t.opaque:
            return s
        props: dict[str, Any] = {}
        for f in t.fields:
            p = schema_of(f.type, f.doc)
            if f.default is not None:
                p["default"] = f.default
            props[f.json] = p
        s["properties"] = props
        required = [f.json for f in t.fields if f.required]
        if required:
            s["required"] = required
        if t.rules:
            s["x-kubernetes-validations"] = _rules(t.rules)
    return s


def _root_schema(k: Kind) -> dict[str, Any]:
    spec = schema_of(k.spec, k.spec.doc)
    status = schema_of(k.status, k.status.doc)
    root: dict[str, Any] = {
        "description": k.doc,
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": f"The API version of this object, {API_VERSION}.",
                "type": "string",
            },
            "kind": {"description": f"The object's kind, {k.kind}.", "type": "string"},
            # The API server allows nothing on metadata but bounds on name and generateName.
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": k.name_max_length}},
            },
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    }
    if k.root_rules:
        root["x-kubernetes-validations"] = _rules(k.root_rules)
    return root


def crd_of(k: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition object of one kind."""
    subresources: dict[str, Any] = {"status": {}}
    if k.scale is not None:
        subresources["scale"] = {
            "specReplicasPath": k.scale.spec_replicas_path,
            "statusReplicasPath": k.scale.status_replicas_path,
            "labelSelectorPath": k.scale.label_selector_path,
        }
    columns = []
    for c in k.columns:
        col: dict[str, Any] = {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            "description": c.doc,
        }
        if c.priority:
            col["priority"] = c.priority
        columns.append(col)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{k.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": k.kind,
                "listKind": f"{k.kind}List",
                "plural": k.plural,
                "singular": k.singular,
                "shortNames": list(k.short_names),
                "categories": ["modelplane"],
            },
            "scope": k.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _root_schema(k)},
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key and writes multi-line strings as blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)

HEADER = "# Generated by tools/apigen/generate.py from tools/apigen/api. DO NOT EDIT.\n"


def crd_files(kinds: tuple[Kind, ...]) -> dict[str, str]:
    """Relative path to YAML text, one CRD file per kind."""
    out: dict[str, str] = {}
    for k in kinds:
        text = yaml.dump(crd_of(k), Dumper=_Dumper, sort_keys=False, width=100)
        out[f"crds/{GROUP}_{k.plural}.yaml"] = HEADER + "---\n" + text
    return out
