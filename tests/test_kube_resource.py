"""`modelplane.kube.resource`: the resource each API path names, as Kubernetes lays paths out."""

from __future__ import annotations

import pytest
from modelplane.kube import resource


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/apis/coordination.k8s.io/v1/namespaces/modelplane-system/leases/fleet-scheduler", "leases"),
        ("/apis/coordination.k8s.io/v1/namespaces/modelplane-system/leases", "leases"),
        ("/apis/modelplane.ai/v1alpha1/namespaces/ml/modelreplicas/qwen-east-0/status", "modelreplicas"),
        ("/apis/modelplane.ai/v1alpha1/modeldeployments", "modeldeployments"),
        ("/apis/modelplane.ai/v1alpha1/inferenceclusters/east", "inferenceclusters"),
        ("/api/v1/nodes", "nodes"),
        ("/api/v1/namespaces/ml", "namespaces"),
        ("/api/v1/namespaces", "namespaces"),
        ("/api/v1/namespaces/ml/secrets?fieldSelector=metadata.name=x", "secrets"),
        ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gateways.gateway.networking.k8s.io", "customresourcedefinitions"),
    ],
)  # fmt: skip
def test_the_resource_of_a_path(path: str, expected: str) -> None:
    assert resource(path) == expected
