"""The wrapper go.mod files are generated from the pins and, for Kubernetes, from the release's go.mod."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from modelplane_localfleet import versions
from modelplane_localfleet.components import COMPONENTS, KEDA, KUBERNETES, SKAFFOLD, Component
from modelplane_localfleet.gomod import (
    Wrapper,
    directives,
    kubernetes_wrapper,
    module_info,
    parse_release,
    pinned_replaces,
    render,
    required_version,
    stale_replaces,
)

RELEASE_GO_MOD = """module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/kylelemons/godebug v1.1.0 // indirect
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/streaming => ./staging/src/k8s.io/streaming
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""

WRAPPER_GO_MOD = """module modelplane.local/localfleet/k8s

go 1.26.0

godebug default=go1.26

require k8s.io/kubernetes v1.36.3

require (
\tcel.dev/expr v0.25.1 // indirect
\tgo.etcd.io/etcd/server/v3 v3.6.16 // indirect
)

tool k8s.io/kubernetes/cmd/kubectl

replace (
\tk8s.io/api => k8s.io/api v0.36.3
\tk8s.io/client-go => k8s.io/client-go v0.36.2
)
"""


def test_every_staging_module_is_replaced_by_its_tagged_release() -> None:
    release = parse_release("v1.36.3", RELEASE_GO_MOD)
    tools = ("k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kubectl")
    assert render(kubernetes_wrapper("modelplane.local/localfleet/k8s", release, tools)) == (
        "module modelplane.local/localfleet/k8s\n"
        "\n"
        "go 1.26.0\n"
        "\n"
        "godebug default=go1.26\n"
        "\n"
        "require k8s.io/kubernetes v1.36.3\n"
        "\n"
        "tool (\n"
        "\tk8s.io/kubernetes/cmd/kube-apiserver\n"
        "\tk8s.io/kubernetes/cmd/kubectl\n"
        ")\n"
        "\n"
        "replace (\n"
        "\tk8s.io/api => k8s.io/api v0.36.3\n"
        "\tk8s.io/client-go => k8s.io/client-go v0.36.3\n"
        "\tk8s.io/streaming => k8s.io/streaming v0.36.3\n"
        ")\n"
    )


def test_a_wrapper_without_tools_only_requires_its_module() -> None:
    wrapper = Wrapper("example.local/w", "1.26.0", (("sigs.k8s.io/gateway-api", "v1.6.3"),))
    assert render(wrapper) == (
        "module example.local/w\n\ngo 1.26.0\n\nrequire sigs.k8s.io/gateway-api v1.6.3\n"
    )


def test_a_go_mod_without_staging_lines_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no \./staging replace lines"):
        parse_release("v1.36.3", "module k8s.io/kubernetes\n\ngo 1.26.0\n")


@pytest.mark.parametrize(
    ("verb", "entries"),
    [
        pytest.param(
            "require",
            [
                "k8s.io/kubernetes v1.36.3",
                "cel.dev/expr v0.25.1",
                "go.etcd.io/etcd/server/v3 v3.6.16",
            ],
            id="single-line and block requires, comments dropped",
        ),
        pytest.param("tool", ["k8s.io/kubernetes/cmd/kubectl"], id="a single tool line"),
        pytest.param("exclude", [], id="an absent directive"),
    ],
)
def test_directives_are_read_from_single_lines_and_blocks(verb: str, entries: list[str]) -> None:
    assert directives(WRAPPER_GO_MOD, verb) == entries


def test_the_required_version_of_a_module_is_found_or_none() -> None:
    assert required_version(WRAPPER_GO_MOD, "go.etcd.io/etcd/server/v3") == "v3.6.16"
    assert required_version(WRAPPER_GO_MOD, "sigs.k8s.io/lws") is None


def test_a_replace_line_that_is_missing_or_at_another_version_is_stale() -> None:
    release = parse_release("v1.36.3", RELEASE_GO_MOD)
    assert stale_replaces(WRAPPER_GO_MOD, release) == [
        "k8s.io/client-go => k8s.io/client-go v0.36.3",
        "k8s.io/streaming => k8s.io/streaming v0.36.3",
    ]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_each_committed_wrapper_requires_its_pin_and_names_its_commands_as_tools(
    component: Component,
) -> None:
    go_mod = (component.module_dir / "go.mod").read_text()
    assert required_version(go_mod, component.upstream) == component.version
    assert sorted(directives(go_mod, "tool")) == sorted(b.package for b in component.binaries)
    go_sum = (component.module_dir / "go.sum").read_text()
    assert f"{component.upstream} {component.version} h1:" in go_sum


def _release_go_mod() -> Path | None:
    try:
        modcache = subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(modcache) / "cache/download/k8s.io/kubernetes/@v" / f"{versions.KUBERNETES}.mod"
    return path if path.is_file() else None


def test_the_committed_kubernetes_wrapper_matches_the_release_go_mod() -> None:
    path = _release_go_mod()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI builds the binaries first, so the release's go.mod must be cached")
        pytest.skip("k8s.io/kubernetes's go.mod is not in the Go module cache yet")
    release = parse_release(versions.KUBERNETES, path.read_text())
    committed = (KUBERNETES.module_dir / "go.mod").read_text()
    assert stale_replaces(committed, release) == []
    assert release.godebug is not None and release.godebug in committed.splitlines()
    assert len(directives(committed, "replace")) == len(release.staging)


UPSTREAM_WITH_PINS = """module example.com/tool

go 1.24.1

replace github.com/b/two => github.com/b/two v0.3.16 // an old API

replace (
\tgithub.com/a/one => github.com/a/one v27.5.1+incompatible
)
"""


def test_version_pinning_replace_lines_are_read_for_a_wrapper_to_carry() -> None:
    assert pinned_replaces(UPSTREAM_WITH_PINS) == (
        ("github.com/a/one", "v27.5.1+incompatible"),
        ("github.com/b/two", "v0.3.16"),
    )
    rendered = render(
        Wrapper(module="m", go="1.26.0", requires=(), replaces=pinned_replaces(UPSTREAM_WITH_PINS))
    )
    assert "\tgithub.com/b/two => github.com/b/two v0.3.16\n" in rendered


@pytest.mark.parametrize(
    "line",
    [
        "replace github.com/a/one => ../one",
        "replace github.com/a/one => github.com/fork/one v1.0.0",
    ],
)
def test_a_replace_that_is_not_a_version_pin_cannot_be_carried(line: str) -> None:
    with pytest.raises(ValueError, match="only same-module version pins"):
        pinned_replaces(line + "\n")


@pytest.mark.parametrize("component", [SKAFFOLD, KEDA], ids=lambda c: c.name)
def test_a_committed_wrapper_carries_every_pin_of_its_release(component: Component) -> None:
    upstream = Path(module_info(component.upstream, component.version)["GoMod"]).read_text()
    committed = (component.module_dir / "go.mod").read_text()
    wanted = [f"{path} => {path} {version}" for path, version in pinned_replaces(upstream)]
    assert wanted, f"{component.name}'s go.mod pins dependencies with replace lines"
    assert sorted(directives(committed, "replace")) == sorted(wanted)
