"""Cluster taints and deployment tolerations, as the Kubernetes taint model defines them one
scope up: NoSchedule keeps new replicas off, NoExecute also drains the ones already there."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from modelplane.scheduling import schedule
from modelplane.scheduling.model import Cluster, Deployment, Replica
from modelplane.scheduling.taints import Taint, Toleration

from tests.scheduling.builders import cluster, deployment, fleet, gpu, hw, pool, replica, summary

L4 = hw("l4", gpu("23034Mi"))
MAINTENANCE_NS = Taint("maintenance", "NoSchedule", "true")
MAINTENANCE_NE = Taint("maintenance", "NoExecute", "true")
ON_A = replica("d", 0, "a", ("engine", "p", 1))


def tainted(name: str, *taints: Taint) -> Cluster:
    return replace(cluster(name, pool("p", "l4", 2)), taints=taints)


def tolerating(*tolerations: Toleration, replicas: int = 1) -> Deployment:
    return replace(deployment("d", replicas=replicas), tolerations=tolerations)


@dataclass
class Case:
    name: str
    clusters: list[Cluster]
    deployment: Deployment
    placed: dict[int, tuple[str, dict[str, str]]]
    existing: list[Replica] = field(default_factory=list)
    removed: list[tuple[int, str]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


ENGINE_ON_A = {0: ("a", {"engine": "p"})}
ENGINE_ON_B = {0: ("b", {"engine": "p"})}
UNTOLERATED_NE = (
    "cluster a has taint maintenance=true:NoExecute that the deployment does not tolerate "
    "(spec.tolerations)"
)

CASES = [
    Case(
        "a NoSchedule taint keeps a new replica off the cluster",
        [tainted("a", MAINTENANCE_NS), tainted("b")],
        tolerating(),
        ENGINE_ON_B,
    ),
    Case(
        "a NoSchedule taint leaves the replica already there",
        [tainted("a", MAINTENANCE_NS), tainted("b")],
        tolerating(),
        ENGINE_ON_A,
        existing=[ON_A],
    ),
    Case(
        "a NoExecute taint drains the replica there and it is placed on another cluster",
        [tainted("a", MAINTENANCE_NE), tainted("b")],
        tolerating(),
        ENGINE_ON_B,
        existing=[ON_A],
        removed=[(0, UNTOLERATED_NE)],
    ),
    Case(
        "an Equal toleration of key, value and effect keeps the replica on a NoExecute cluster",
        [tainted("a", MAINTENANCE_NE), tainted("b")],
        tolerating(Toleration("maintenance", "Equal", "true", "NoExecute")),
        ENGINE_ON_A,
        existing=[ON_A],
    ),
    Case(
        "an Equal toleration of another value does not tolerate the taint",
        [tainted("a", MAINTENANCE_NE), tainted("b")],
        tolerating(Toleration("maintenance", "Equal", "false")),
        ENGINE_ON_B,
        existing=[ON_A],
        removed=[(0, UNTOLERATED_NE)],
    ),
    Case(
        "an Exists toleration of the key tolerates any value",
        [tainted("a", MAINTENANCE_NS), tainted("b", MAINTENANCE_NS)],
        tolerating(Toleration("maintenance", "Exists")),
        ENGINE_ON_A,
    ),
    Case(
        "an Exists toleration without a key tolerates every taint",
        [tainted("a", MAINTENANCE_NE, Taint("gpu-check", "NoSchedule")), tainted("b")],
        tolerating(Toleration(operator="Exists")),
        ENGINE_ON_A,
        existing=[ON_A],
    ),
    Case(
        "a toleration of NoSchedule only does not keep a replica on a NoExecute cluster",
        [tainted("a", MAINTENANCE_NE), tainted("b")],
        tolerating(Toleration("maintenance", "Equal", "true", "NoSchedule")),
        ENGINE_ON_B,
        existing=[ON_A],
        removed=[(0, UNTOLERATED_NE)],
    ),
    Case(
        "a toleration without an effect tolerates both effects",
        [tainted("a", MAINTENANCE_NS, MAINTENANCE_NE), tainted("b")],
        tolerating(Toleration("maintenance", "Equal", "true"), replicas=2),
        {0: ("a", {"engine": "p"}), 1: ("b", {"engine": "p"})},
        existing=[ON_A],
    ),
    Case(
        "every cluster tainted leaves the replica unplaced with each taint as the reason",
        [tainted("a", MAINTENANCE_NE), tainted("b", Taint("dedicated", "NoSchedule", "search"))],
        tolerating(),
        {},
        reasons=[
            "a: has taint maintenance=true:NoExecute that the deployment does not tolerate "
            "(spec.tolerations)",
            "b: has taint dedicated=search:NoSchedule that the deployment does not tolerate "
            "(spec.tolerations)",
        ],
    ),
    Case(
        "once the taint is removed new replicas spread onto the cluster again",
        [tainted("a"), tainted("b")],
        tolerating(replicas=2),
        {0: ("b", {"engine": "p"}), 1: ("a", {"engine": "p"})},
        existing=[replica("d", 0, "b", ("engine", "p", 1))],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_taint_rule(case: Case) -> None:
    placement = schedule(case.deployment, fleet(case.clusters, [L4], case.existing))
    assert summary(placement) == case.placed
    assert [(r.replica.index, r.why) for r in placement.removed] == case.removed
    assert list(placement.reasons) == case.reasons


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        (Toleration("k", "Equal", "v", "NoSchedule"), Taint("k", "NoSchedule", "v"), True),
        (Toleration("k", "Equal", "", None), Taint("k", "NoExecute"), True),
        (Toleration("k", "Equal", "", None), Taint("k", "NoExecute", "v"), False),
        (Toleration("other", "Exists"), Taint("k", "NoSchedule"), False),
        (Toleration("", "Exists", "", "NoExecute"), Taint("k", "NoSchedule"), False),
        (Toleration("", "Exists", "", "NoExecute"), Taint("k", "NoExecute", "v"), True),
    ],
)
def test_a_toleration_matches_as_in_kubernetes(
    toleration: Toleration, taint: Taint, tolerated: bool
) -> None:
    assert toleration.tolerates(taint) is tolerated


def test_a_taint_prints_as_kubectl_prints_node_taints() -> None:
    assert [str(MAINTENANCE_NE), str(Taint("gpu-check", "NoSchedule"))] == [
        "maintenance=true:NoExecute",
        "gpu-check:NoSchedule",
    ]
