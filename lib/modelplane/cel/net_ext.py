"""Kubernetes' IP and CIDR CEL libraries (``k8s.io/apiserver/pkg/cel/library``).

``ip(s)``, ``isIP(s)``, ``ip.isCanonical(s)``, ``cidr(s)``, ``isCIDR(s)``,
``string(ip)``/``string(cidr)`` and the methods ``family``,
``isUnspecified``, ``isLoopback``, ``isLinkLocalMulticast``,
``isLinkLocalUnicast``, ``isGlobalUnicast``, ``containsIP``,
``containsCIDR``, ``ip``, ``prefixLength``, ``masked``.  Parsing follows
Go's ``netip`` strictly (no leading zeros in IPv4 octets or prefix lengths,
no zones, no IPv4-mapped IPv6); a CIDR keeps its address unmasked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from modelplane.cel.overloads import Function, Overload
from modelplane.cel.types import BOOL, CIDR, INT, IP, STRING
from modelplane.cel.values import EvalError, no_overload

__all__ = ["NETWORK", "IPValue", "PrefixValue"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class IPValue:
    CEL_KIND = "net.IP"
    addr: Address

    def __str__(self) -> str:
        return str(self.addr)


@dataclass(frozen=True, slots=True)
class PrefixValue:
    CEL_KIND = "net.IPPrefix"
    addr: Address
    bits: int

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.addr}/{self.bits}", strict=False)

    def __str__(self) -> str:
        return f"{self.addr}/{self.bits}"


def _parse_addr(raw: str) -> Address:
    if "%" in raw:
        raise ValueError(f"IP address {raw!r} with zone value is not allowed")
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        raise ValueError(f"IP Address {raw!r} parse error during conversion from string") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError(f"IPv4-mapped IPv6 address {raw!r} is not allowed")
    return addr


def _parse_prefix(raw: str) -> PrefixValue:
    text, slash, bits = raw.rpartition("/")
    if not slash or not bits.isdigit() or (len(bits) > 1 and bits[0] == "0") or "%" in text:
        raise ValueError("network address parse error during conversion from string")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("network address parse error during conversion from string") from None
    if int(bits) > addr.max_prefixlen:
        raise ValueError("network address parse error during conversion from string")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError(f"IPv4-mapped IPv6 address {raw!r} is not allowed")
    return PrefixValue(addr, int(bits))


def _string_arg(name: str, s: Any) -> str:
    if type(s) is not str:
        raise no_overload(name, s)
    return s


def _ip(s: Any) -> IPValue:
    try:
        return IPValue(_parse_addr(_string_arg("ip", s)))
    except ValueError as e:
        raise EvalError(str(e)) from None


def _is_ip(s: Any) -> bool:
    try:
        _parse_addr(_string_arg("isIP", s))
    except ValueError:
        return False
    return True


def _is_canonical(s: Any) -> bool:
    try:
        return bool(str(_parse_addr(_string_arg("ip.isCanonical", s))) == s)
    except ValueError as e:
        raise EvalError(str(e)) from None


def _cidr(s: Any) -> PrefixValue:
    try:
        return _parse_prefix(_string_arg("cidr", s))
    except ValueError as e:
        raise EvalError(str(e)) from None


def _is_cidr(s: Any) -> bool:
    try:
        _parse_prefix(_string_arg("isCIDR", s))
    except ValueError:
        return False
    return True


def _ip_method(name: str, test: Any) -> Any:
    def run(value: Any) -> Any:
        if not isinstance(value, IPValue):
            raise no_overload(name, value)
        return test(value.addr)

    return run


def _in(addr: Address, *networks: str) -> bool:
    return any(
        addr in ipaddress.ip_network(n)
        for n in networks
        if ipaddress.ip_network(n).version == addr.version
    )


def _global_unicast(addr: Address) -> bool:
    if addr.version == 4 and str(addr) in ("0.0.0.0", "255.255.255.255"):
        return False
    return not (
        addr.is_unspecified
        or _in(addr, "127.0.0.0/8", "::1/128")
        or _in(addr, "224.0.0.0/4", "ff00::/8")
        or _in(addr, "169.254.0.0/16", "fe80::/10")
    )


def _cidr_method(name: str, body: Any) -> Any:
    def run(value: Any, *args: Any) -> Any:
        if not isinstance(value, PrefixValue):
            raise no_overload(name, value, *args)
        return body(value, *args)

    return run


def _contains_ip(prefix: PrefixValue, other: Any) -> bool:
    if type(other) is str:
        other = _ip(other)
    if not isinstance(other, IPValue):
        raise no_overload("containsIP", prefix, other)
    return other.addr.version == prefix.addr.version and other.addr in prefix.network()


def _contains_cidr(prefix: PrefixValue, other: Any) -> bool:
    if type(other) is str:
        other = _cidr(other)
    if not isinstance(other, PrefixValue):
        raise no_overload("containsCIDR", prefix, other)
    if other.addr.version != prefix.addr.version:
        return False
    return prefix.network().overlaps(other.network()) and prefix.bits <= other.bits


def _masked(prefix: PrefixValue) -> PrefixValue:
    return PrefixValue(prefix.network().network_address, prefix.bits)


def _to_string(value: Any) -> str:
    if isinstance(value, IPValue | PrefixValue):
        return str(value)
    raise no_overload("string", value)


def _m(params: tuple[Any, ...], result: Any) -> Overload:
    return Overload(params, result, member=True)


NETWORK: tuple[Function, ...] = (
    Function("ip", (Overload((STRING,), IP),), _ip),
    Function("isIP", (Overload((STRING,), BOOL),), _is_ip),
    Function("ip.isCanonical", (Overload((STRING,), BOOL),), _is_canonical),
    Function("cidr", (Overload((STRING,), CIDR),), _cidr),
    Function("isCIDR", (Overload((STRING,), BOOL),), _is_cidr),
    Function("string", (Overload((IP,), STRING), Overload((CIDR,), STRING)), _to_string),
    Function("family", (_m((IP,), INT),), _ip_method("family", lambda a: a.version)),
    Function(
        "isUnspecified", (_m((IP,), BOOL),), _ip_method("isUnspecified", lambda a: a.is_unspecified)
    ),
    Function(
        "isLoopback",
        (_m((IP,), BOOL),),
        _ip_method("isLoopback", lambda a: _in(a, "127.0.0.0/8", "::1/128")),
    ),
    Function(
        "isLinkLocalMulticast",
        (_m((IP,), BOOL),),
        _ip_method("isLinkLocalMulticast", lambda a: _in(a, "224.0.0.0/24", "ff02::/16")),
    ),
    Function(
        "isLinkLocalUnicast",
        (_m((IP,), BOOL),),
        _ip_method("isLinkLocalUnicast", lambda a: _in(a, "169.254.0.0/16", "fe80::/10")),
    ),
    Function("isGlobalUnicast", (_m((IP,), BOOL),), _ip_method("isGlobalUnicast", _global_unicast)),
    Function(
        "containsIP",
        (_m((CIDR, STRING), BOOL), _m((CIDR, IP), BOOL)),
        _cidr_method("containsIP", _contains_ip),
    ),
    Function(
        "containsCIDR",
        (_m((CIDR, STRING), BOOL), _m((CIDR, CIDR), BOOL)),
        _cidr_method("containsCIDR", _contains_cidr),
    ),
    Function("ip", (_m((CIDR,), IP),), _cidr_method("ip", lambda p: IPValue(p.addr))),
    Function("prefixLength", (_m((CIDR,), INT),), _cidr_method("prefixLength", lambda p: p.bits)),
    Function("masked", (_m((CIDR,), CIDR),), _cidr_method("masked", _masked)),
)
