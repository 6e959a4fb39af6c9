"""The Fleet API's paths: kind and namespace to the cluster's API collection."""

from __future__ import annotations

import pytest
from cluster_provisioner.fleetapi import collection
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2 as pb


@pytest.mark.parametrize(
    ("api_version", "resource", "namespace", "path"),
    [
        ("v1", "services", "ml", "/api/v1/namespaces/ml/services"),
        ("v1", "nodes", "", "/api/v1/nodes"),
        ("apps/v1", "deployments", "ml", "/apis/apps/v1/namespaces/ml/deployments"),
        (
            "gateway.networking.k8s.io/v1", "httproutes", "",
            "/apis/gateway.networking.k8s.io/v1/httproutes",
        ),
    ],
)  # fmt: skip
def test_collection(api_version: str, resource: str, namespace: str, path: str) -> None:
    kind = pb.Kind(cluster="east", api_version=api_version, resource=resource)
    assert collection(kind, namespace) == path
