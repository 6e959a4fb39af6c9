"""The small vocabulary the modelplane.ai API is written in.

Every kind, struct and field of the API is a value built from these frozen
dataclasses (see ``tools.apigen.api``). ``tools.apigen.crdgen`` turns them into
CustomResourceDefinition YAML, which the offline validator reads, and
``tools.apigen.pygen`` writes the group, version and kind names for Python.

Guarantees: every node is immutable and comparable, so a struct used in two
places is provably the same struct; ``Field`` refuses an empty description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True)
class Rule:
    """One ``x-kubernetes-validations`` entry: a CEL rule over ``self``."""

    rule: str
    message: str
    field_path: str | None = None


@dataclass(frozen=True)
class Str:
    """A string, optionally bounded, patterned, enumerated or formatted."""

    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    format: str | None = None


@dataclass(frozen=True)
class Int:
    """A 64-bit integer, optionally bounded."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Bool:
    """A boolean."""


@dataclass(frozen=True)
class Quantity:
    """A Kubernetes resource quantity: an integer or a string such as ``40Gi``."""


@dataclass(frozen=True)
class Preserve:
    """An object kept as written (a pod template); the only untyped node."""


@dataclass(frozen=True)
class ListOf:
    """A list; ``list_type`` is ``atomic``, ``set`` or ``map`` (keyed by ``map_keys``)."""

    item: Type
    max_items: int
    min_items: int | None = None
    list_type: str | None = None
    map_keys: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class MapOf:
    """A map from string keys to values of one type."""

    value: Type
    max_properties: int
    min_properties: int | None = None
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Field:
    """One property of a struct: its JSON name, type and ``kubectl explain`` text."""

    json: str
    type: Type
    doc: str
    required: bool = False
    default: Any = None
    py: str | None = None

    def __post_init__(self) -> None:
        if not self.doc.strip():
            raise ValueError(f"field {self.json!r} needs a description")


@dataclass(frozen=True)
class Obj:
    """A struct: a Python class named ``name`` and an OpenAPI object schema.

    ``opaque`` structs (object metadata) appear in the CRD as a bare object,
    since the API server validates them itself.
    """

    name: str
    doc: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = ()
    opaque: bool = False


Type: TypeAlias = Str | Int | Bool | Quantity | Preserve | ListOf | MapOf | Obj


@dataclass(frozen=True)
class Column:
    """An ``additionalPrinterColumns`` entry."""

    name: str
    type: str
    json_path: str
    doc: str
    priority: int = 0


@dataclass(frozen=True)
class Scale:
    """The scale subresource's three paths."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str


@dataclass(frozen=True)
class Kind:
    """One custom resource kind of the API group."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    scope: str
    doc: str
    spec: Obj
    status: Obj
    columns: tuple[Column, ...]
    scale: Scale | None = None
    root_rules: tuple[Rule, ...] = ()
    name_max_length: int = 253
    """Kinds whose names become label values elsewhere are bounded to 63 characters."""

    @property
    def singular(self) -> str:
        return self.kind.lower()
