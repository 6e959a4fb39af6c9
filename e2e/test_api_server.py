"""Our API on a real kube-apiserver: CRDs install, documentation manifests are accepted,
every rule rejects with its message, and kubectl shows what users ask for first."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from e2e.backends import ClusterHandle
from tests.api.builders import edited, valid
from tests.api.test_rules import REJECTED, Rejected

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seed" / "manifests"
CRDS = sorted((ROOT / "crds").glob("*.yaml"))
KINDS = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in CRDS}
RULE_MESSAGES: list[str] = []


def _collect_rule_messages(node: object, out: list[str]) -> None:
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", []):
            out.append(rule["message"])
        for value in node.values():
            _collect_rule_messages(value, out)
    elif isinstance(node, list):
        for value in node:
            _collect_rule_messages(value, out)


for _path in CRDS:
    _collect_rule_messages(yaml.safe_load(_path.read_text()), RULE_MESSAGES)


@pytest.fixture(scope="module")
def api(control: ClusterHandle) -> Iterator[ClusterHandle]:
    """The session's control cluster with the CRDs and the builders' namespace. Afterwards
    everything the builders' objects left there is deleted (no service runs in this module,
    so nothing holds a finalizer): a later module's services would otherwise adopt them,
    e.g. the ModelReplica on the unprovisionable `gke-us`, whose teardown can never finish."""
    control.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    control.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    control.kubectl("create", "namespace", "ml-team")
    yield control
    control.kubectl("delete", "namespace", "ml-team", "--timeout=120s", check=False)
    for kind in ("InferenceCluster", "InferenceClass", "InferenceGateway"):
        name = valid(kind)["metadata"]["name"]
        control.kubectl("delete", kind.lower(), name, "--ignore-not-found", check=False)
    # the per-test namespaces go asynchronously; their replicas must be gone too
    control.kubectl(
        "wait", "--for=delete", "modelreplicas", "--all", "-A", "--timeout=120s", check=False
    )


def test_every_crd_is_established(api: ClusterHandle) -> None:
    crds = json.loads(api.kubectl("get", "crd", "-o", "json").stdout)["items"]
    established = {
        c["spec"]["names"]["kind"]
        for c in crds
        if c["spec"]["group"] == "modelplane.ai"
        and any(
            x["type"] == "Established" and x["status"] == "True" for x in c["status"]["conditions"]
        )
    }
    assert established == KINDS


def _seed_documents() -> list[tuple[str, str]]:
    if not SEED.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SEED} is missing; CI must provide ../shared")
        return []
    found = []
    for path in sorted(SEED.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("apiVersion") == "modelplane.ai/v1alpha1":
                found.append((f"{path.relative_to(SEED)}#{index}", yaml.safe_dump(doc)))
    return found


SEED_DOCS = _seed_documents()


@pytest.mark.parametrize(("where", "text"), SEED_DOCS, ids=[w for w, _ in SEED_DOCS])
def test_every_documentation_manifest_is_accepted_by_the_api_server(
    api: ClusterHandle, where: str, text: str
) -> None:
    result = api.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=text, check=False
    )
    assert result.returncode == 0, f"{where}: {result.stderr}"


EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(ROOT)) for p in EXAMPLES])
def test_every_repository_example_is_accepted(api: ClusterHandle, path: Path) -> None:
    result = api.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", str(path), check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", REJECTED, ids=[c.name for c in REJECTED])
def test_each_invalid_manifest_is_rejected_by_the_api_server_with_the_rules_message(
    api: ClusterHandle, case: Rejected
) -> None:
    obj = edited(valid(case.kind), *case.edits)
    if case.path.startswith("status"):
        # Status is written through its subresource; the main resource drops it.
        status = obj.pop("status")
        api.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(obj))
        meta = obj["metadata"]
        where = ["-n", meta["namespace"]] if "namespace" in meta else []
        text = json.dumps({"status": status})
        result = api.kubectl(
            "patch",
            case.kind.lower(),
            meta["name"],
            *where,
            "--subresource=status",
            "--type=merge",
            "--dry-run=server",
            "-p",
            text,
            check=False,
        )
    else:
        text = json.dumps(obj)
        result = api.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=text, check=False
        )
    assert result.returncode != 0, f"accepted: {text}"
    if any(case.message in rule for rule in RULE_MESSAGES):
        assert case.message in result.stderr
    else:
        assert case.path.rsplit(".", 1)[-1].split("[")[0] in result.stderr


def test_an_unknown_field_is_rejected_under_strict_validation(api: ClusterHandle) -> None:
    obj = valid("ModelDeployment")
    obj["spec"]["replica"] = 2
    result = api.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
        stdin=json.dumps(obj),
        check=False,
    )
    assert result.returncode != 0
    assert 'unknown field "spec.replica"' in result.stderr


def test_kubectl_scale_uses_the_scale_subresource_and_it_shows_the_selector(
    api: ClusterHandle, namespace: str
) -> None:
    obj = valid("ModelDeployment")
    obj["metadata"]["name"] = "scaled"
    obj["metadata"]["namespace"] = namespace
    api.kubectl("apply", "-f", "-", stdin=json.dumps(obj))
    api.kubectl("scale", "md/scaled", "-n", obj["metadata"]["namespace"], "--replicas=5")
    spec = json.loads(
        api.kubectl("get", "md/scaled", "-n", obj["metadata"]["namespace"], "-o", "json").stdout
    )
    assert spec["spec"]["replicas"] == 5
    status = {
        "status": {
            "replicas": 2,
            "readyReplicas": 1,
            "desiredReplicas": 5,
            "selector": "modelplane.ai/deployment=scaled",
        }
    }
    api.kubectl(
        "patch",
        "md/scaled",
        "-n",
        obj["metadata"]["namespace"],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    ns = obj["metadata"]["namespace"]
    scale = json.loads(
        api.kubectl(
            "get",
            "--raw",
            f"/apis/modelplane.ai/v1alpha1/namespaces/{ns}/modeldeployments/scaled/scale",
        ).stdout
    )
    assert scale["spec"]["replicas"] == 5
    assert scale["status"] == {"replicas": 2, "selector": "modelplane.ai/deployment=scaled"}
    table = api.kubectl("get", "md", "scaled", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "REPLICAS", "DESIRED", "AGE"]
    assert table[1].split()[:3] == ["scaled", "1", "5"]


def test_kubectl_get_modelplane_lists_every_kind_and_explain_describes_fields(
    api: ClusterHandle,
) -> None:
    resources = api.kubectl("api-resources", "--categories=modelplane", "-o", "name").stdout.split()
    assert len(resources) == len(KINDS)
    explained = api.kubectl("explain", "modeldeployment.spec.replicas").stdout
    assert "DESCRIPTION" in explained or "FIELD" in explained
    assert len(explained.split()) > 15


def test_printer_columns_answer_the_first_question_for_replicas_clusters_and_services(
    api: ClusterHandle, namespace: str
) -> None:
    headers = {
        "mr": ["NAME", "CLUSTER", "SYNCED", "READY", "AGE"],
        "ic": ["NAME", "SOURCE", "READY", "GATEWAY", "ACCOUNTING", "AGE"],
        "ms": ["NAME", "ADDRESS", "AGE"],
    }
    for short, header in headers.items():
        kind = {"mr": "ModelReplica", "ic": "InferenceCluster", "ms": "ModelService"}[short]
        obj = valid(kind)
        if "namespace" in obj["metadata"]:
            obj["metadata"]["namespace"] = namespace
        api.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(obj))
        where = ["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else []
        table = api.kubectl("get", short, obj["metadata"]["name"], *where).stdout.splitlines()
        assert table[0].split() == header, short
    listed = api.kubectl("get", "modelplane", "-A", "-o", "name").stdout.split()
    assert {name.split("/")[0].split(".")[0] for name in listed} >= {
        "modeldeployment",
        "modelreplica",
        "modelservice",
        "inferencecluster",
    }
