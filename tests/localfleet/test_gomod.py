"""The Kubernetes wrapper go.mod is generated from the release's own go.mod."""

from __future__ import annotations

import pytest
from modelplane_localfleet.gomod import parse_release, wrapper_go_mod

SAMPLE = """module k8s.io/kubernetes

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


def test_every_staging_module_is_replaced_by_its_tagged_release() -> None:
    release = parse_release("v1.36.3", SAMPLE)
    assert wrapper_go_mod("modelplane.local/localfleet/k8s", release) == (
        "module modelplane.local/localfleet/k8s\n"
        "\n"
        "go 1.26.0\n"
        "\n"
        "godebug default=go1.26\n"
        "\n"
        "require k8s.io/kubernetes v1.36.3\n"
        "\n"
        "replace (\n"
        "\tk8s.io/api => k8s.io/api v0.36.3\n"
        "\tk8s.io/client-go => k8s.io/client-go v0.36.3\n"
        "\tk8s.io/streaming => k8s.io/streaming v0.36.3\n"
        ")\n"
    )


def test_a_go_mod_without_staging_lines_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no \./staging replace lines"):
        parse_release("v1.36.3", "module k8s.io/kubernetes\n\ngo 1.26.0\n")
