"""The activator's pure parts: the catalog of services, the path rewrite, the verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from activator.catalog import Entry, Policy, Target, catalog, service_of
from activator.holding import verdict

Json = dict[str, Any]


def service(name: str, scale_to_zero: Json | None = None, namespace: str = "ml") -> Json:
    spec: Json = {"endpoints": [{"selector": {"matchLabels": {"modelplane.ai/deployment": name}}}]}
    if scale_to_zero is not None:
        spec["scaleToZero"] = scale_to_zero
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def endpoint(name: str, url: str, deployment: str, rewrite: str = "/", **meta: Any) -> Json:
    return {
        "metadata": {"name": name, "namespace": "ml",
                     "labels": {"modelplane.ai/deployment": deployment}, **meta},
        "spec": {"url": url, "rewritePath": rewrite},
    }  # fmt: skip


def test_a_service_without_scale_to_zero_has_no_policy_and_defaults_fill_an_empty_one() -> None:
    found = catalog([service("a"), service("b", {}), service("c", {"holdTimeoutSeconds": 3})], [])
    assert found == {
        ("ml", "a"): Entry("/ml/a/", None),
        ("ml", "b"): Entry("/ml/b/", Policy(600, 256)),
        ("ml", "c"): Entry("/ml/c/", Policy(3, 256)),
    }


def test_targets_are_the_selected_endpoints_with_a_routable_url_as_the_front_door_routes_them() -> (
    None
):
    endpoints = [
        endpoint("rep-b", "http://10.240.2.9", "qwen", "/ml/rep-b/"),
        endpoint("rep-a", "http://10.240.1.5:8080", "qwen", "/ml/rep-a/"),
        endpoint("v6", "http://[fd00::7]:81", "qwen"),
        endpoint("loop", "http://127.0.0.1:80", "qwen"),  # not routable: left out
        endpoint("other", "http://10.240.1.6", "llama"),
        endpoint("gone", "http://10.240.1.7", "qwen", deletionTimestamp="2026-12-03T00:00:00Z"),
    ]
    found = catalog([service("qwen", {})], endpoints)[("ml", "qwen")]
    assert found.targets == (
        Target("rep-a", "http://10.240.1.5:8080", "/ml/rep-a/"),
        Target("rep-b", "http://10.240.2.9:80", "/ml/rep-b/"),
        Target("v6", "http://[fd00::7]:81", "/"),
    )


@pytest.mark.parametrize(
    ("rewrite", "path", "query", "expected"),
    [
        (
            "/ml/rep-a/",
            "/ml/qwen/v1/chat/completions",
            "",
            "http://h:80/ml/rep-a/v1/chat/completions",
        ),
        ("/", "/ml/qwen/v1/models", "x=1", "http://h:80/v1/models?x=1"),
        ("/base", "/ml/qwen/v1/models", "", "http://h:80/base/v1/models"),
        ("/v1/", "/ml/qwen/", "", "http://h:80/v1/"),
    ],
)
def test_the_service_prefix_is_replaced_by_the_endpoints_rewrite_path(
    rewrite: str, path: str, query: str, expected: str
) -> None:
    assert Target("e", "http://h:80", rewrite).url("/ml/qwen/", path, query) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ml/qwen/v1/chat/completions", ("ml", "qwen")),
        ("/ml/qwen/", ("ml", "qwen")),
        ("/ml/qwen", None),
        ("/ml//v1", None),
        ("/", None),
    ],
)
def test_the_service_comes_from_the_path(path: str, expected: tuple[str, str] | None) -> None:
    assert service_of(path) == expected


HOLDING = Entry("/ml/q/", Policy(600, 2))
WITH_TARGET = Entry("/ml/q/", Policy(600, 2), (Target("a", "http://h:80", "/"),))


@pytest.mark.parametrize(
    ("entry", "held", "expected"),
    [
        (None, 0, "unknown"),
        (WITH_TARGET, 5, "forward"),
        (Entry("/ml/q/", None), 0, "refuse"),
        (HOLDING, 0, "hold"),
        (HOLDING, 1, "hold"),
        (HOLDING, 2, "full"),
    ],
)
def test_a_new_request_is_forwarded_refused_held_or_turned_away_when_the_queue_is_full(
    entry: Entry | None, held: int, expected: str
) -> None:
    assert verdict(entry, held) == expected
