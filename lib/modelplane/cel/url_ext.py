"""Kubernetes' URL CEL library: ``url``, ``isURL`` and the URL accessors.

A string is a URL when Go's ``url.ParseRequestURI`` accepts it (an absolute
URI or an absolute path); the accessors read the result of ``url.Parse``
(which also splits off a fragment).  This module re-implements the parts of
Go's ``net/url`` those two need: scheme, authority (userinfo, host, port),
path with percent-decoding and re-escaping (``EscapedPath``), and
``ParseQuery`` for ``getQuery``.  Pure code; errors raise ``ValueError``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from modelplane.cel.overloads import Function, Overload
from modelplane.cel.types import BOOL, STRING, URL, list_of, map_of
from modelplane.cel.values import EvalError, no_overload

__all__ = ["URLS", "URLValue", "parse_url"]

_ALNUM = frozenset(string.ascii_letters + string.digits)
_HEX = frozenset(string.hexdigits)
_HOST_OK = frozenset("!$&'()*+,;=:[]<>\"-_.~")
_PATH_OK = frozenset("-_.~$&+,/:;=@")
_ENCODED_OK = frozenset("!$&'()*+,;=:@[]%")


@dataclass(frozen=True, slots=True)
class URLValue:
    CEL_KIND = "kubernetes.URL"
    scheme: str
    host: str
    path: str
    raw_path: str
    raw_query: str
    opaque: str


def _escape_path(path: str) -> str:
    out = []
    for byte in path.encode("utf-8"):
        c = chr(byte)
        out.append(c if c in _ALNUM or c in _PATH_OK else f"%{byte:02X}")
    return "".join(out)


def _unescape(text: str, host: bool = False, query: bool = False) -> str:
    data = bytearray()
    i = 0
    raw = text.encode("utf-8")
    while i < len(raw):
        c = chr(raw[i])
        if c == "%":
            digits = raw[i + 1 : i + 3].decode("latin-1")
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise ValueError(f"invalid URL escape {text[i : i + 3]!r}")
            data.append(int(digits, 16))
            i += 3
            continue
        if host and raw[i] < 0x80 and c not in _ALNUM and c not in _HOST_OK:
            raise ValueError(f"invalid character {c!r} in host name")
        data.append(ord(" ") if query and c == "+" else raw[i])
        i += 1
    return data.decode("utf-8", errors="replace")


def _scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c in string.ascii_letters:
            continue
        if c in string.digits + "+-.":
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise ValueError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _valid_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all(c in string.digits for c in port[1:]))


def _host(authority: str) -> str:
    at = authority.rfind("@")
    host = authority[at + 1 :]
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise ValueError("missing ']' in host")
        if not _valid_port(host[close + 1 :]):
            raise ValueError("invalid port after host")
    else:
        colon = host.rfind(":")
        if colon >= 0 and not _valid_port(host[colon:]):
            raise ValueError("invalid port after host")
    return _unescape(host, host=True)


def parse_url(raw: str, request: bool) -> URLValue:
    """Go's ``url.ParseRequestURI`` (``request``) or ``url.Parse``."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("invalid control character in URL")
    if not request:
        raw = raw.partition("#")[0]
    elif raw == "":
        raise ValueError("empty url")
    scheme, rest = _scheme(raw)
    scheme = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return URLValue(scheme, "", "", "", query, rest)
        if request:
            raise ValueError("invalid URI for request")
        if ":" in rest.partition("/")[0]:
            raise ValueError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        host = _host(authority)
        rest = slash + tail
    path = _unescape(rest)
    raw_path = "" if _escape_path(path) == rest else rest
    return URLValue(scheme, host, path, raw_path, query, "")


def _escaped_path(u: URLValue) -> str:
    raw = u.raw_path
    if raw and _valid_encoded(raw) and _unescape(raw) == u.path:
        return raw
    if u.path == "*":
        return "*"
    return _escape_path(u.path)


def _valid_encoded(text: str) -> bool:
    return all(c in _ENCODED_OK or c in _ALNUM or c in _PATH_OK for c in text)


def _split_host_port(host: str) -> tuple[str, str]:
    port = ""
    colon = host.rfind(":")
    if colon >= 0 and _valid_port(host[colon:]):
        host, port = host[:colon], host[colon + 1 :]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def _query(u: URLValue) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for part in u.raw_query.split("&"):
        if not part or ";" in part:
            continue
        key, _, value = part.partition("=")
        try:
            key, value = _unescape(key, query=True), _unescape(value, query=True)
        except ValueError:
            continue
        found.setdefault(key, []).append(value)
    return {k: tuple(v) for k, v in found.items()}


def _url(s: Any) -> URLValue:
    if type(s) is not str:
        raise no_overload("url", s)
    try:
        parse_url(s, request=True)
        return parse_url(s, request=False)
    except ValueError as e:
        raise EvalError(f"URL parse error during conversion from string: {e}") from None


def _is_url(s: Any) -> bool:
    if type(s) is not str:
        raise no_overload("isURL", s)
    try:
        parse_url(s, request=True)
    except ValueError:
        return False
    return True


def _accessor(name: str, body: Any) -> Any:
    def run(u: Any) -> Any:
        if not isinstance(u, URLValue):
            raise no_overload(name, u)
        return body(u)

    return run


def _m(result: Any) -> tuple[Overload, ...]:
    return (Overload((URL,), result, member=True),)


URLS: tuple[Function, ...] = (
    Function("url", (Overload((STRING,), URL),), _url),
    Function("isURL", (Overload((STRING,), BOOL),), _is_url),
    Function("getScheme", _m(STRING), _accessor("getScheme", lambda u: u.scheme)),
    Function("getHost", _m(STRING), _accessor("getHost", lambda u: u.host)),
    Function(
        "getHostname", _m(STRING), _accessor("getHostname", lambda u: _split_host_port(u.host)[0])
    ),
    Function("getPort", _m(STRING), _accessor("getPort", lambda u: _split_host_port(u.host)[1])),
    Function("getEscapedPath", _m(STRING), _accessor("getEscapedPath", _escaped_path)),
    Function("getQuery", _m(map_of(STRING, list_of(STRING))), _accessor("getQuery", _query)),
)
