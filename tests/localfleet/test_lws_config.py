"""LWS outside a pod: its configuration, and upstream's webhooks patched and pointed at a URL."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from modelplane_localfleet import binaries, lws

ENTRY = binaries.LWS.entry(binaries.default_cache())


@pytest.fixture(scope="module")
def webhook_dir() -> Path:
    path = ENTRY / "webhook"
    if not (path / "manifests.yaml").exists():
        pytest.fail(f"LWS manifests missing at {path}: run `modelplane-localfleet build`")
    return path


def test_the_manager_runs_one_replica_with_our_certificate_on_the_clusters_address(
    tmp_path: Path,
) -> None:
    config = lws.manager_config(
        address="10.240.0.2",
        webhook_port=9443,
        health_port=8081,
        metrics_port=8443,
        cert_dir=tmp_path,
    )
    assert config["leaderElection"] == {"leaderElect": False}
    assert config["internalCertManagement"] == {"enable": False}
    assert config["webhook"] == {"host": "10.240.0.2", "port": 9443, "certDir": str(tmp_path)}
    assert config["health"]["healthProbeBindAddress"] == "10.240.0.2:8081"
    assert config["metrics"]["bindAddress"] == "10.240.0.2:8443"


def test_every_webhook_calls_its_url_with_the_ca_bundle_and_no_service(webhook_dir: Path) -> None:
    documents = lws.webhook_configurations(
        webhook_dir, base_url="https://10.240.0.2:9443", ca_pem=b"PEM"
    )
    assert {d["kind"] for d in documents} == {
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
    hooks = [w for d in documents for w in d["webhooks"]]
    assert len(hooks) >= 4
    for hook in hooks:
        assert set(hook["clientConfig"]) == {"url", "caBundle"}
        assert hook["clientConfig"]["url"].startswith("https://10.240.0.2:9443/")
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == b"PEM"
    assert all(d["metadata"]["name"].startswith("lws-") for d in documents)


def test_the_pod_webhooks_only_see_pods_of_a_leaderworkerset(webhook_dir: Path) -> None:
    documents = lws.webhook_configurations(webhook_dir, base_url="https://a:1", ca_pem=b"x")
    pod_hooks = [
        w for d in documents for w in d["webhooks"] if w["rules"][0]["resources"] == ["pods"]
    ]
    assert {w["name"] for w in pod_hooks} == {"mpod.kb.io", "vpod.kb.io"}
    for hook in pod_hooks:
        assert hook["objectSelector"] == {
            "matchExpressions": [{"key": lws.POD_LABEL, "operator": "Exists"}]
        }


def test_a_patch_operation_upstream_never_used_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifests.yaml").write_text(
        "kind: MutatingWebhookConfiguration\nmetadata: {name: m}\nwebhooks: []\n"
    )
    (tmp_path / "mutating-patch.yaml").write_text(
        yaml.safe_dump([{"op": "add", "path": "/x", "value": 1}])
    )
    with pytest.raises(ValueError, match="unsupported webhook patch add /x"):
        lws.webhook_configurations(tmp_path, base_url="https://a:1", ca_pem=b"x")


def test_rbac_binds_upstreams_manager_role_to_our_user() -> None:
    role, binding = lws.rbac_objects(ENTRY / "rbac" / "role.yaml", "modelplane:lws")
    assert role["kind"] == "ClusterRole"
    assert role["metadata"] == {"name": lws.ROLE_NAME}
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert ("leaderworkerset.x-k8s.io", "leaderworkersets") in granted
    assert ("apps", "statefulsets") in granted
    assert binding["roleRef"]["name"] == lws.ROLE_NAME
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "modelplane:lws"}
    ]
