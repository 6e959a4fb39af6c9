"""Static CEL types for the selector checker.

A deliberately small type algebra: primitive names, ``list``/``map`` with
parameters, the opaque ``quantity``/``semver`` library types, the ``device``
object, the IP, CIDR and URL library types, ``optional_type(T)`` and
``type(T)`` (the type of a type value), and two unknowns: ``any`` (a
device attribute, whose type is only known at runtime, as Kubernetes
declares it) and ``dyn``.  Both unknowns are
assignable to and from everything.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "CIDR",
    "DEVICE",
    "DOUBLE",
    "DYN",
    "INT",
    "IP",
    "NULL",
    "QUANTITY",
    "SEMVER",
    "STRING",
    "UINT",
    "URL",
    "Type",
    "assignable",
    "element",
    "list_of",
    "map_of",
    "optional_of",
    "type_of",
    "unify",
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
IP = Type("net.IP")
CIDR = Type("net.IPPrefix")
URL = Type("kubernetes.URL")
ANY = Type("any")
DYN = Type("dyn")


def list_of(elem: Type) -> Type:
    return Type("list", (elem,))


def map_of(key: Type, value: Type) -> Type:
    return Type("map", (key, value))


def optional_of(value: Type) -> Type:
    return Type("optional_type", (value,))


def type_of(value: Type) -> Type:
    """The static type of a type value (``int`` has type ``type(int)``)."""
    return Type("type", (value,))


def unify(a: Type, b: Type) -> bool:
    """Whether two types can stand for one type parameter (unknowns join anything)."""
    if a.unknown or b.unknown:
        return True
    if a.name != b.name or len(a.params) != len(b.params):
        return False
    return all(unify(x, y) for x, y in zip(a.params, b.params, strict=True))


def element(t: Type) -> Type:
    """The element type of a list type (``dyn`` for anything else)."""
    return t.params[0] if t.name == "list" and t.params else DYN


def assignable(param: Type, arg: Type) -> bool:
    """Whether a value of static type ``arg`` may be passed where ``param`` is expected."""
    if param.unknown or arg.unknown:
        return True
    if param.name != arg.name or len(param.params) != len(arg.params):
        return False
    return all(assignable(p, a) for p, a in zip(param.params, arg.params, strict=True))
