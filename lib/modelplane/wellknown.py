"""Names and types every modelplane service agrees on, defined here once.

Services import these instead of spelling them again, so two services can never
disagree on the Gateway they route through or the label they select by. Pure:
constants and type aliases only (no I/O), so pure decision code may import it.
Labels derived from owners (deployment, cluster, pool, replica index) live in
`modelplane.naming`.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
"""A Kubernetes object (or any JSON object) as the API returns it."""

API_VERSION = "modelplane.ai/v1alpha1"
"""apiVersion of every modelplane kind."""
API = f"/apis/{API_VERSION}"
"""REST path prefix of the modelplane kinds on the control cluster."""

SYSTEM_NAMESPACE = "modelplane-system"
"""Where the platform's own objects live, on the control cluster and on inference clusters."""

INFERENCE_GATEWAY_NAMESPACE = SYSTEM_NAMESPACE
INFERENCE_GATEWAY_NAME = "modelplane-inference"
INFERENCE_GATEWAY = (INFERENCE_GATEWAY_NAMESPACE, INFERENCE_GATEWAY_NAME)
"""(namespace, name) of the serving stack's Gateway on every inference cluster."""

MANAGED_BY = "app.kubernetes.io/managed-by"
"""The label saying which service owns an object (value: `modelplane-<service>`)."""

CLUSTER_UNREACHABLE = "ClusterUnreachable"
"""Reason of an InferenceCluster's Ready=False when cluster-provisioner cannot reach it
(cluster-provisioner writes it; endpoint-manager reads it to release replicas at once)."""

SYSTEM_NODE_LABEL = "modelplane.ai/system"
"""On an inference cluster's system (non-GPU) nodes, value "true": where platform pods that
need no device run (the prefill/decode router). Such nodes carry no `modelplane.ai/pool`
label, so no node pool (and no scheduler) counts them."""

PD_ROUTER_LOAD_PATH = "/modelplane/load"
"""The prefill/decode router's own path on its proxy port (never passed to an engine): the
decode engines' `vllm:num_requests_running`/`_waiting` summed over every decode pod, as
Prometheus text. endpoint-manager's scaler scrapes it for a PrefillDecode replica, whose
`/metrics` the router passes to one decode pod only."""

SCHEDULER_EXTENDER_LEASE = ("kube-system", "modelplane-scheduler-extender")
"""(namespace, name) of the Lease the scheduler extender holds and renews on its inference
cluster while it serves; cluster-provisioner follows it to report the extension's health."""

SCHEDULER_NAME = "modelplane"
"""`schedulerName` of the second kube-scheduler that runs with the scheduler extender on an
inference cluster; endpoint-manager sets it on the pods it renders there while the
extension is healthy."""
