"""The scheduler extension on each inference cluster: a second kube-scheduler and the extender.

Managed control planes do not let users reconfigure their kube-scheduler, so the
extension ships as a second one: the real `kube-scheduler` binary with one profile,
`schedulerName: modelplane`, whose extender is Modelplane's
(`modelplane-scheduler-extender`, HTTP `filter` and `prioritize`, node-cache
capable). The default scheduler keeps every other pod.

`ignorable: false` on purpose: when the extender is down or has not synced its
watches, the second scheduler fails the attempt and retries the pod later; it
never binds a GPU pod without the extender's view of which devices are free
(binding blind is what strands GPUs). Pods of other schedulers are unaffected.

The extender acts as the user `modelplane:scheduler-extender`, allowed to read
(get, list, watch) ResourceSlices, ResourceClaims, ResourceClaimTemplates and
DeviceClasses, and to hold its Lease in kube-system (get, list, watch, create,
update Leases there), by which cluster-provisioner reports the extension healthy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from modelplane import wellknown

from modelplane_localfleet.layout import PORTS

EXTENDER_USER = "modelplane:scheduler-extender"
SCHEDULER_COMPONENT = "modelplane-scheduler"
EXTENDER_COMPONENT = "scheduler-extender"
EXTENDER_WEIGHT = 10  # scores 0..10 x 10 x weight: outweighs the default score plugins
ROLE_NAME = "modelplane-localfleet:scheduler-extender"
SCHEDULER_NAME = wellknown.SCHEDULER_NAME
LEASE_NAMESPACE = wellknown.SCHEDULER_EXTENDER_LEASE[0]


def scheduler_config(scheduler_kubeconfig: Path, extender_url: str) -> dict[str, Any]:
    """The second kube-scheduler's KubeSchedulerConfiguration."""
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(scheduler_kubeconfig)},
        "leaderElection": {"leaderElect": False},
        "profiles": [{"schedulerName": SCHEDULER_NAME}],
        "extenders": [
            {
                "urlPrefix": extender_url,
                "filterVerb": "filter",
                "prioritizeVerb": "prioritize",
                "weight": EXTENDER_WEIGHT,
                "nodeCacheCapable": True,
                "ignorable": False,
                "httpTimeout": "5s",
            }
        ],
    }


def write_scheduler_config(path: Path, scheduler_kubeconfig: Path, extender_url: str) -> None:
    path.write_text(yaml.safe_dump(scheduler_config(scheduler_kubeconfig, extender_url)))


def extender_url(address: str) -> str:
    return f"http://{address}:{PORTS.scheduler_extender}"


def extender_command(kubeconfig: Path, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scheduler_extender",
        f"--kubeconfig={kubeconfig}",
        f"--listen={address}:{PORTS.scheduler_extender}",
    ]


def scheduler_command(
    kube_scheduler: Path, config: Path, scheduler_kubeconfig: Path, address: str, serving: list[str]
) -> list[str]:
    return [
        str(kube_scheduler),
        f"--config={config}",
        f"--authentication-kubeconfig={scheduler_kubeconfig}",
        f"--authorization-kubeconfig={scheduler_kubeconfig}",
        f"--bind-address={address}",
        f"--secure-port={PORTS.modelplane_scheduler}",
        *serving,
    ]


def rbac_objects() -> list[dict[str, Any]]:
    """Read-only access to the DRA objects, and its Lease, for the extender's user."""
    api = "rbac.authorization.k8s.io/v1"
    return [
        {
            "apiVersion": api,
            "kind": "ClusterRole",
            "metadata": {"name": ROLE_NAME},
            "rules": [
                {
                    "apiGroups": ["resource.k8s.io"],
                    "resources": [
                        "resourceslices",
                        "resourceclaims",
                        "resourceclaimtemplates",
                        "deviceclasses",
                    ],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": api,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": ROLE_NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": ROLE_NAME},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": EXTENDER_USER}],
        },
        {
            "apiVersion": api,
            "kind": "Role",
            "metadata": {"name": ROLE_NAME, "namespace": LEASE_NAMESPACE},
            "rules": [
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "list", "watch", "create", "update"],
                }
            ],
        },
        {
            "apiVersion": api,
            "kind": "RoleBinding",
            "metadata": {"name": ROLE_NAME, "namespace": LEASE_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": ROLE_NAME},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": EXTENDER_USER}],
        },
    ]  # fmt: skip
