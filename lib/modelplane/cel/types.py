"""Static CEL types for the selector checker.

A deliberately small type algebra: primitive names, ``list``/``map`` with
parameters, the opaque ``quantity``/``semver`` library types, the ``device``
object, and two unknowns: ``any`` (a device attribute, whose type is only known
at runtime, as Kubernetes declares it) and ``dyn``.  Both unknowns are
assignable to and from everything.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "DEVICE",
    "DOUBLE",
    "DYN",
    "INT",
    "NULL",
    "QUANTITY",
    "SEMVER",
    "STRING",
    "UINT",
    "Type",
    "assignable",
    "list_of",
    "map_of",
]


@dataclass(frozen=True, slots=True)
class Type:
    name: str
    params: tuple[Type, ...] = ()

    @property
    def unknown(self) -> bool:
        return self.name in ("any", "dyn")

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(str(p) for p in self.params)})"


BOOL = Type("bool")
INT = Type("int")
UINT = Type("uint")
DOUBLE = Type("double")
STRING = Type("string")
BYTES = Type("bytes")
NULL = Type("null_type")
QUANTITY = Type("kubernetes.Quantity")
SEMVER = Type("kubernetes.Semver")
DEVICE = Type("kubernetes.DRADevice")
ANY = Type("any")
DYN = Type("dyn")


def list_of(elem: Type) -> Type:
    return Type("list", (elem,))


def map_of(key: Type, value: Type) -> Type:
    return Type("map", (key, value))


def assignable(param: Type, arg: Type) -> bool:
    """Whether a value of static type ``arg`` may be passed where ``param`` is expected."""
    if param.unknown or arg.unknown:
        return True
    if param.name != arg.name or len(param.params) != len(arg.params):
        return False
    return all(assignable(p, a) for p, a in zip(param.params, arg.params, strict=True))
