"""Deterministic generator of selector expressions for the differential test.

``generate(count, seed)`` returns the same (name, device, expression) triples
for the same arguments on every run and platform: it draws from
``random.Random(seed)`` only.  Expressions combine device fields, attribute
and capacity lookups (present and missing), library calls and literals with
the logical, comparison and arithmetic operators, so that well-typed,
ill-typed and runtime-erroring expressions are all produced.
"""

from __future__ import annotations

import random

__all__ = ["generate"]

DEVICES = ("h100", "a100", "mig", "cpu", "empty")
DOMAINS = ("gpu.nvidia.com", "dra.net", "cpu.example.com", "resource.kubernetes.io", "amd.com")
ATTRIBUTE_NAMES = (
    "architecture",
    "index",
    "migEnabled",
    "cudaComputeCapability",
    "driverVersion",
    "numaNode",
    "rdma",
    "pcieRoot",
    "cores",
    "vendor",
    "power",
)
CAPACITY_NAMES = ("memory", "multiprocessors", "bandwidth", "cores", "frequency", "slices")
QUANTITIES = ("80Gi", "81559Mi", "40Gi", "1k", "1Ki", "0.5Gi", "1e3", "100m", "3.5G", "0")
VERSIONS = ("9.0.0", "8.0.0", "12.4.0", "550.54.15", "1.2.3-rc.9", "1.2.3", "0.0.1")
STRINGS = ("Hopper", "Ampere", "AMD", "pci0000:00", "gpu.nvidia.com", "")


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def attribute(self) -> str:
        return f'device.attributes["{self.pick(DOMAINS)}"].{self.pick(ATTRIBUTE_NAMES)}'

    def capacity(self) -> str:
        return f'device.capacity["{self.pick(DOMAINS)}"].{self.pick(CAPACITY_NAMES)}'

    def literal(self) -> str:
        kind = self.rng.randrange(5)
        if kind == 0:
            return f'"{self.pick(STRINGS)}"'
        if kind == 1:
            return str(self.rng.randrange(-3, 200))
        if kind == 2:
            return self.pick(("true", "false"))
        if kind == 3:
            return f'semver("{self.pick(VERSIONS)}")'
        return f'quantity("{self.pick(QUANTITIES)}")'

    def atom(self) -> str:
        kind = self.rng.randrange(12)
        if kind == 0:
            return f'device.driver == "{self.pick(DOMAINS)}"'
        if kind == 1:
            op = self.pick(("==", "!=", "<", ">=", ">"))
            return f"{self.attribute()} {op} {self.literal()}"
        if kind == 2:
            method = self.pick(("isGreaterThan", "isLessThan"))
            return f'{self.attribute()}.{method}(semver("{self.pick(VERSIONS)}"))'
        if kind == 3:
            op = self.pick(("<", ">=", "==", ">"))
            q = self.pick(QUANTITIES)
            return f'{self.capacity()}.compareTo(quantity("{q}")) {op} 0'
        if kind == 4:
            method = self.pick(("isGreaterThan", "isLessThan"))
            return (
                f'quantity("{self.pick(QUANTITIES)}").{method}(quantity("{self.pick(QUANTITIES)}"))'
            )
        if kind == 5:
            return f"has({self.attribute()})"
        if kind == 6:
            return f'"{self.pick(DOMAINS)}" in device.{self.pick(("attributes", "capacity"))}'
        if kind == 7:
            return self.attribute()
        if kind == 8:
            return f"{self.attribute()} + {self.rng.randrange(3)} {self.pick(('>', '=='))} 1"
        if kind == 9:
            return f'semver("{self.pick(VERSIONS)}").compareTo(semver("{self.pick(VERSIONS)}")) < 0'
        if kind == 10:
            return f"{self.capacity()}.isInteger()"
        return self.pick(("true", "false"))

    def expression(self, depth: int) -> str:
        if depth == 0 or self.rng.random() < 0.35:
            return self.atom()
        kind = self.rng.randrange(4)
        left = self.expression(depth - 1)
        right = self.expression(depth - 1)
        if kind == 0:
            return f"({left} && {right})"
        if kind == 1:
            return f"({left} || {right})"
        if kind == 2:
            return f"!({left})"
        return f"({self.atom()} ? {left} : {right})"


def generate(count: int, seed: int) -> list[tuple[str, str, str]]:
    """``count`` (name, device, expression) triples, identical for identical arguments."""
    rng = random.Random(seed)
    gen = _Gen(rng)
    return [(f"generated #{i}", DEVICES[i % len(DEVICES)], gen.expression(3)) for i in range(count)]
