"""Which ModelEndpoint URLs gateway-config routes, and how it selects endpoints (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_config.backends import Backend, backend, parse_url, select


@pytest.mark.parametrize(
    ("name", "url", "expected"),
    [
        ("http defaults to port 80", "http://10.240.0.2", ("http", "10.240.0.2", 80, "IPv4")),
        ("https defaults to port 443", "https://api.together.xyz/", ("https", "api.together.xyz", 443, "FQDN")),
        ("an explicit port wins", "http://10.240.0.2:8080/", ("http", "10.240.0.2", 8080, "IPv4")),
        ("https on another port", "https://10.1.2.3:8443", ("https", "10.1.2.3", 8443, "IPv4")),
        ("an IPv6 host", "http://[fd00::5]:81", ("http", "fd00::5", 81, "IPv6")),
        ("host names are lowercased and lose a trailing dot", "HTTPS://API.Groq.COM.", ("https", "api.groq.com", 443, "FQDN")),
    ],
)  # fmt: skip
def test_routable_urls(name: str, url: str, expected: tuple[str, str, int, str]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("name", "url", "why"),
    [
        ("another scheme", "ftp://10.1.1.1/", "scheme 'ftp' is not http or https"),
        ("no scheme", "//10.1.1.1:80", "it has no scheme (http:// or https://)"),
        ("no host", "http:///v1", "it has no host"),
        ("a port out of range", "http://10.1.1.1:99999", "not a valid URL (Port out of range 0-65535)"),
        ("a port that is not a number", "http://10.1.1.1:http", "not a valid URL (Port could not be cast to integer value as 'http')"),
        ("port zero", "http://10.1.1.1:0", "port 0 is not a valid port"),
        ("a path", "https://api.groq.com/openai/v1", "a path (/openai/v1) is not supported: the gateway forwards to scheme://host:port and spec.rewritePath sets the path the backend sees"),
        ("a query", "http://10.1.1.1/?a=1", "a query or fragment is not supported"),
        ("user info", "https://me:secret@api.example.com", "user info in the URL is not supported"),
        ("a loopback address", "http://127.0.0.1:8000", "host 127.0.0.1 is a loopback address, which an EndpointSlice cannot hold"),
        ("a link-local address", "http://169.254.1.1", "host 169.254.1.1 is a link-local address, which an EndpointSlice cannot hold"),
        ("a single-label host", "http://engine:8000", "host 'engine' is not fully qualified (an EndpointSlice needs a name with at least two dot-separated labels)"),
        ("a host that is no DNS name", "http://bad_host.example.com", "host 'bad_host.example.com' is neither an IP address nor a valid DNS name"),
    ],
)  # fmt: skip
def test_unroutable_urls_say_why(name: str, url: str, why: str) -> None:
    assert parse_url(url) == why


def endpoint(name: str, namespace: str = "ml", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"url": "http://10.0.0.1", "rewritePath": f"/{name}/"},
    }


def test_a_backend_carries_its_rewrite_path() -> None:
    assert backend(endpoint("a")) == Backend("a", "http", "10.0.0.1", 80, "IPv4", "/a/")


def test_a_bad_backend_names_the_object_and_field() -> None:
    found = backend({"metadata": {"name": "x", "namespace": "ml"}, "spec": {"url": "gopher://h"}})
    assert found == "ModelEndpoint ml/x spec.url 'gopher://h': scheme 'gopher' is not http or https"


def test_selection_is_the_sorted_union_within_the_namespace_and_names_empty_entries() -> None:
    endpoints = [
        endpoint("c", app="chat", tier="gold"),
        endpoint("a", app="chat"),
        endpoint("b", app="chat", tier="gold", namespace="other"),
        endpoint("d", app="embed"),
    ]
    service = {
        "metadata": {"name": "svc", "namespace": "ml"},
        "spec": {
            "endpoints": [
                {"selector": {"matchLabels": {"app": "chat"}}},
                {"selector": {"matchLabels": {"tier": "gold"}}},
                {"selector": {"matchLabels": {"app": "chat", "tier": "silver"}}},
            ]
        },
    }
    chosen, empty = select(service, endpoints)
    assert [e["metadata"]["name"] for e in chosen] == ["a", "c"]
    assert empty == [2]


def test_replica_endpoints_are_reached_over_h2c_and_others_keep_their_scheme() -> None:
    replica = endpoint("r", **{"app.kubernetes.io/managed-by": "modelplane-endpoint-manager"})
    found = backend(replica)
    assert isinstance(found, Backend) and found.app_protocol == "kubernetes.io/h2c"
    manual = backend(endpoint("m"))
    assert isinstance(manual, Backend) and manual.app_protocol == "http"
    tls = {**replica, "spec": {"url": "https://api.example.com", "rewritePath": "/"}}
    secure = backend(tls)
    assert isinstance(secure, Backend) and secure.app_protocol == "https"
