"""Container environments resolved as kubelet does; missing references named by field."""

from __future__ import annotations

from typing import Any

from modelplane_localfleet.nodeagent.env import PodFacts, expand, referenced, resolve

FACTS = PodFacts(pod_ip="10.244.16.5", host_ip="10.244.16.1", node_name="east-l4-0")


def _pod(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "qwen-0",
            "namespace": "ml",
            "uid": "u-1",
            "labels": {"leaderworkerset.sigs.k8s.io/worker-index": "0"},
        },
        "spec": {"nodeName": "east-l4-0", "containers": [container]},
    }


def test_every_source_kubelet_supports_resolves_in_order() -> None:
    container = {
        "name": "engine",
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "LWS_LEADER_ADDRESS", "value": "qwen-0.qwen.ml"},
            {"name": "LEADER_URL", "value": "http://$(LWS_LEADER_ADDRESS):8000/$(UNSET)/$$(X)"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {
                "name": "INDEX",
                "valueFrom": {
                    "fieldRef": {
                        "fieldPath": "metadata.labels['leaderworkerset.sigs.k8s.io/worker-index']"
                    }
                },
            },
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            {
                "name": "MEM_MI",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
        "resources": {"limits": {"memory": "1536Ki"}},
    }
    resolved = resolve(
        _pod(container),
        container,
        FACTS,
        {("ml", "settings"): {"mode": "fast"}},
        {("ml", "hf"): {"HF_TOKEN": "secret"}},
    )
    assert resolved.problems == []
    assert resolved.env == {
        "CFG_mode": "fast",
        "LWS_LEADER_ADDRESS": "qwen-0.qwen.ml",
        "LEADER_URL": "http://qwen-0.qwen.ml:8000/$(UNSET)/$(X)",
        "POD_IP": "10.244.16.5",
        "NAME": "qwen-0",
        "NODE": "east-l4-0",
        "INDEX": "0",
        "TOKEN": "secret",
        "MODE": "fast",
        "MEM_MI": "2",
    }


def test_missing_references_name_the_pod_container_field_and_object() -> None:
    container = {
        "name": "engine",
        "envFrom": [{"secretRef": {"name": "absent-optional", "optional": True}}],
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}},
            {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "x", "key": "y", "optional": True}},
            },
        ],
    }
    resolved = resolve(_pod(container), container, FACTS, {("ml", "cm"): {"other": "1"}}, {})
    assert resolved.problems == [
        "pod ml/qwen-0 container engine: env[0] (TOKEN).valueFrom.secretKeyRef: secret 'hf' not found",
        "pod ml/qwen-0 container engine: env[1] (K).valueFrom.configMapKeyRef: key 'nope' not in configMap 'cm'",
    ]
    assert "OPT" not in resolved.env


def test_referenced_objects_are_collected_from_every_container() -> None:
    container = {
        "name": "engine",
        "envFrom": [{"secretRef": {"name": "a"}}, {"configMapRef": {"name": "c"}}],
        "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "b", "key": "k"}}}],
    }
    pod = _pod(container)
    assert (referenced(pod, "secret"), referenced(pod, "configMap")) == ({"a", "b"}, {"c"})


def test_expand_leaves_unknown_references_and_unescapes_dollars() -> None:
    assert expand("$(A)-$(B)-$$(A)-$", {"A": "1"}) == "1-$(B)-$(A)-$"
