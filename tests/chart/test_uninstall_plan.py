"""The pre-delete hook's decisions: workloads first, clusters after, nothing deleted twice."""

from __future__ import annotations

from typing import Any

from tests.chart.uninstall import uninstall_module

API = "/apis/modelplane.ai/v1alpha1"


def obj(name: str, namespace: str | None = None, **meta: Any) -> dict[str, Any]:
    metadata = {"name": name, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return {"metadata": metadata}


def test_nothing_left_means_done() -> None:
    assert uninstall_module().plan({}).done
    assert uninstall_module().plan({"modeldeployments": [], "inferenceclusters": []}).done


def test_deployments_and_services_go_before_any_cluster() -> None:
    step = uninstall_module().plan(
        {
            "modeldeployments": [obj("chat", "team-a")],
            "modelservices": [obj("chat", "team-a")],
            "inferenceclusters": [obj("east")],
        }
    )
    assert sorted(step.delete) == [
        f"{API}/namespaces/team-a/modeldeployments/chat",
        f"{API}/namespaces/team-a/modelservices/chat",
    ]
    assert not step.done


def test_terminating_replicas_are_waited_on_not_deleted_again() -> None:
    replica = obj(
        "chat-0", "team-a", deletionTimestamp="2026-01-01T00:00:00Z",
        finalizers=["modelplane.ai/endpoint-manager"],
    )  # fmt: skip
    step = uninstall_module().plan({"modelreplicas": [replica], "inferenceclusters": [obj("east")]})
    assert step.delete == []
    assert step.waiting == ["modelreplicas/team-a/chat-0 (held by modelplane.ai/endpoint-manager)"]


def test_clusters_and_classes_go_once_the_workloads_are_gone() -> None:
    step = uninstall_module().plan(
        {
            "modelreplicas": [],
            "inferenceclusters": [obj("east", finalizers=["modelplane.ai/cluster-provisioner"])],
            "inferenceclasses": [obj("l4")],
        }
    )
    assert step.delete == [f"{API}/inferenceclusters/east", f"{API}/inferenceclasses/l4"]
    assert step.waiting == [
        "inferenceclusters/east (held by modelplane.ai/cluster-provisioner)",
        "inferenceclasses/l4",
    ]


def test_gateway_config_objects_are_waited_on_last_and_never_deleted() -> None:
    route = obj("chat", "modelplane-system", labels={"app.kubernetes.io/managed-by": "x"})
    gateway = obj("modelplane-gateway", "modelplane-system")
    step = uninstall_module().plan({"httproutes": [route], "gateways": [gateway]})
    assert step.delete == []
    assert sorted(step.waiting) == [
        "gateways/modelplane-system/modelplane-gateway", "httproutes/modelplane-system/chat",
    ]  # fmt: skip
    first = uninstall_module().plan({"httproutes": [route], "inferenceclasses": [obj("l4")]})
    assert first.waiting == ["inferenceclasses/l4"]


def test_each_gateway_config_kind_is_listed_by_its_label_at_its_api() -> None:
    collections = {c.plural: c for c in uninstall_module().PHASES[-1]}
    assert collections["httproutes"].path == "/apis/gateway.networking.k8s.io/v1/httproutes"
    assert collections["services"].path == "/api/v1/services"
    assert collections["endpointslices"].path == "/apis/discovery.k8s.io/v1/endpointslices"
    selectors = {c.selector for c in collections.values()}
    assert selectors == {"app.kubernetes.io/managed-by=modelplane-gateway-config"}


def test_object_paths_from_a_cluster_wide_or_a_namespaced_collection_agree() -> None:
    hook = uninstall_module()
    everywhere = hook.Collection("modelservices", f"{API}/modelservices")
    one = hook.Collection("modelservices", f"{API}/namespaces/team-a/modelservices")
    service = obj("chat", "team-a")
    want = f"{API}/namespaces/team-a/modelservices/chat"
    assert hook.object_path(everywhere, service) == hook.object_path(one, service) == want
    assert hook.object_path(hook.Collection("inferenceclasses", f"{API}/inferenceclasses"),
                            obj("l4")) == f"{API}/inferenceclasses/l4"  # fmt: skip
