"""Session fixtures for end-to-end tests on the local fleet.

One control plane (etcd and a real kube-apiserver, built from the pinned
Kubernetes release) comes up once per test session inside a network namespace
this session creates, and is torn down with it. A failed start fails the
session; it never skips it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelplane_localfleet import binaries
from modelplane_localfleet.controlplane import ControlPlane
from modelplane_localfleet.netns import NetworkNamespace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    if os.geteuid() != 0:
        pytest.fail("the local fleet needs root to create its network namespace")
    cache = binaries.default_cache()
    kubernetes = binaries.build(binaries.KUBERNETES, cache)
    etcd = binaries.build(binaries.ETCD, cache) / "etcd"
    namespace = NetworkNamespace(f"mp-e2e-{uuid.uuid4().hex[:8]}")
    namespace.create()
    plane = ControlPlane("control", tmp_path_factory.mktemp("fleet"), namespace, kubernetes, etcd)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        namespace.delete(grace_s=2)
