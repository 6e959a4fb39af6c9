"""Deterministic generator of selector expressions for the differential test.

``generate(count, seed)`` returns the same (name, device, expression) triples
for the same arguments on every run and platform: it draws from
``random.Random(seed)`` only.  Expressions combine device fields, attribute
and capacity lookups (present and missing), library calls and literals with
the logical, comparison and arithmetic operators, and calls into every
extension library Kubernetes enables (strings, regex, lists, sets, IP/CIDR,
URL, optional types, ``type()``), so that well-typed, ill-typed and
runtime-erroring expressions are all produced.
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
STRING_CALLS = (
    'lowerAscii() == "hopper"',
    'upperAscii().startsWith("AMP")',
    'charAt(0) == "H"',
    'charAt(99) == ""',
    'indexOf("p") > 1',
    'indexOf("e", 2) >= 0',
    'lastIndexOf("e") > 0',
    'replace("o", "0") != ""',
    'replace("p", "", 1).size() > 3',
    'split("p").size() > 1',
    'split("", 2)[0] == "H"',
    'substring(1) != ""',
    "substring(1, 3).size() == 2",
    'substring(3, 1) == ""',
    'trim() == "Hopper"',
    'find("[a-z]+") == "opper"',
    'findAll("p").size() >= 2',
    'findAll("[A-Z]", 1).size() == 1',
    'matches("^(?i)h")',
    "size() >= 6",
)
LIST_EXPRS = (
    "[3, 1, 2]",
    "[1.5, 0.5]",
    '["b", "a", "c"]',
    "[]",
    "lists.range(4)",
    "[1, 2, 2, 3]",
    "[[1], [2, 3]]",
)
LIST_CALLS = (
    "sum() > 2",
    "min() == 1",
    "max() > 1",
    "isSorted()",
    "indexOf(2) >= 0",
    "lastIndexOf(2) == 2",
    "size() > 0",
    "reverse()[0] == 3",
    "distinct().size() == 3",
    "sort()[0] == 1",
    "slice(1, 2).size() == 1",
    "flatten().size() > 2",
    "exists(x, x == 2)",
    "all(x, x > 0)",
)
IPS = ("10.0.0.1", "127.0.0.1", "::1", "fe80::1", "224.0.0.1", "0.0.0.0", "2001:db8::1", "1.2.3")
CIDRS = ("10.0.0.0/8", "192.168.0.1/24", "::/0", "2001:db8::/32", "10.0.0.0/33")
IP_CALLS = (
    "family() == 4",
    "isLoopback()",
    "isUnspecified()",
    "isGlobalUnicast()",
    "isLinkLocalUnicast()",
    "isLinkLocalMulticast()",
)
CIDR_CALLS = (
    'containsIP("10.1.2.3")',
    'containsIP(ip("2001:db8::5"))',
    'containsCIDR("10.1.0.0/16")',
    "prefixLength() >= 8",
    'masked() == cidr("192.168.0.0/24")',
    "ip().family() == 6",
)
URLS = (
    "https://example.com:8080/a/b?x=1&x=2",
    "/just/a/path",
    "http://[::1]:80/",
    "not a url",
    "mailto:someone@example.com",
)
URL_CALLS = (
    'getScheme() == "https"',
    'getHost() == "example.com:8080"',
    'getHostname() != ""',
    'getPort() == "80"',
    'getEscapedPath().startsWith("/")',
    "getQuery().size() > 0",
)
OPTIONALS = (
    'device.attributes["gpu.nvidia.com"].?architecture',
    'device.attributes["gpu.nvidia.com"].?missing',
    'device.attributes[?"amd.com"]',
    "[1, 2][?1]",
    "[1, 2][?5]",
    "optional.none()",
    "optional.of(3)",
    "optional.ofNonZeroValue(0)",
)
OPTIONAL_CALLS = (
    "hasValue()",
    'orValue("x") == "Hopper"',
    "value() == 2",
    "or(optional.of(1)).hasValue()",
)
MAP_EXPRS = ("device.attributes", "device.capacity", '{"a": 1, "b": 2}')
MACRO_CALLS = (
    "all(i, v, v != 0)",
    "exists(k, v, k == 1)",
    "existsOne(i, v, v == 2)",
    "transformList(i, v, v).size() > 1",
    "transformList(i, v, i > 0, v).size() == 1",
    "transformMap(k, v, k).size() > 0",
    "sortBy(x, x).size() > 2",
    "map(x, x).size() == 3",
    "filter(x, x == 2).size() == 1",
    "exists_one(x, x == 2)",
    'exists(d, d.startsWith("dra"))',
)
TYPE_NAMES = ("int", "string", "bool", "list", "map", "double", "uint", "net.IP")


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
        kind = self.rng.randrange(14)
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
        if kind == 11:
            return self.pick(("true", "false"))
        return self.extension()

    def extension(self) -> str:
        kind = self.rng.randrange(9)
        if kind == 0:
            target = self.pick((self.attribute(), f'"{self.pick(STRINGS)}"', "device.driver"))
            return f"{target}.{self.pick(STRING_CALLS)}"
        if kind == 1:
            return f"{self.pick(LIST_EXPRS)}.{self.pick(LIST_CALLS)}"
        if kind == 2:
            fn = self.pick(("sets.contains", "sets.intersects", "sets.equivalent"))
            return f"{fn}({self.pick(LIST_EXPRS)}, {self.pick(LIST_EXPRS)})"
        if kind == 3:
            address = self.pick(IPS)
            if self.rng.random() < 0.3:
                return f'isIP("{address}")'
            return f'ip("{address}").{self.pick(IP_CALLS)}'
        if kind == 4:
            prefix = self.pick(CIDRS)
            if self.rng.random() < 0.3:
                return f'isCIDR("{prefix}")'
            return f'cidr("{prefix}").{self.pick(CIDR_CALLS)}'
        if kind == 5:
            url = self.pick(URLS)
            if self.rng.random() < 0.3:
                return f'isURL("{url}")'
            return f'url("{url}").{self.pick(URL_CALLS)}'
        if kind == 6:
            return f"{self.pick(OPTIONALS)}.{self.pick(OPTIONAL_CALLS)}"
        if kind == 7:
            operand = self.pick((self.attribute(), self.literal(), "device.driver"))
            return f"type({operand}) == {self.pick(TYPE_NAMES)}"
        return f"{self.pick(LIST_EXPRS + MAP_EXPRS)}.{self.pick(MACRO_CALLS)}"

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
