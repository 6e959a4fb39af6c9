"""Every rule of "How it schedules" as a named table case, compared on whole outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from modelplane.scheduling import schedule_all
from modelplane.scheduling.model import Deployment, Fleet

from tests.scheduling.builders import (
    cache,
    cluster,
    deployment,
    engine,
    fleet,
    gpu,
    hw,
    mem_at_least,
    member,
    nic,
    pool,
    replica,
    request,
    standalone,
    summary,
)

L4 = hw("l4", gpu("23034Mi"))
A100 = hw("a100", gpu("40960Mi", architecture="Ampere"))
H100X8 = hw("h100x8", gpu("81559Mi", count=8, architecture="Hopper"), nic(8))
ZERO = hw("zero", gpu("81559Mi", count=0))

HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
INFINIBAND = 'device.attributes["nic.nvidia.com"].linkType == "infiniband"'


@dataclass
class Case:
    name: str
    fleet: Fleet
    deployments: list[Deployment]
    placed: list[dict[int, tuple[str, dict[str, str]]]]
    unscheduled: list[int] = field(default_factory=list)
    reasons: list[list[str]] = field(default_factory=list)
    removed: list[list[tuple[int, str]]] = field(default_factory=list)
    error: list[str | None] = field(default_factory=list)


CASES = [
    Case(
        "clusters are filtered by clusterSelector matchLabels",
        fleet(
            [
                cluster("east", pool("p", "l4"), region="us-east"),
                cluster("west", pool("p", "l4"), region="us-west"),
            ],
            [L4],
        ),
        [deployment("d", region="us-west")],
        [{0: ("west", {"engine": "p"})}],
    ),
    Case(
        "pools are filtered by the CEL device request against their class",
        fleet([cluster("c", pool("small", "l4"), pool("big", "a100"))], [L4, A100]),
        [deployment("d", standalone(memory="35Gi"))],
        [{0: ("c", {"engine": "big"})}],
    ),
    Case(
        "a request's count must be covered by one node of the pool",
        fleet([cluster("c", pool("l4", "l4"), pool("h", "h100x8"))], [L4, H100X8]),
        [deployment("d", standalone(memory="20Gi", count=4))],
        [{0: ("c", {"engine": "h"})}],
    ),
    Case(
        "two requests cannot count the same device twice within one pod",
        fleet([cluster("c", pool("h", "h100x8"))], [H100X8]),
        [
            deployment(
                "d",
                engine("e", member("Standalone", request("a", 5, HOPPER), request("b", 5, HOPPER))),
            )
        ],
        [{}],
        [1],
        [
            [
                'c: no pool satisfies engine "e": devices "a", "b" need 10 distinct devices per node '
                'together, class "h100x8" cannot cover them without counting a device twice'
            ]
        ],
    ),
    Case(
        "two requests that together fit the device count are placed",
        fleet([cluster("c", pool("h", "h100x8"))], [H100X8]),
        [
            deployment(
                "d",
                engine("e", member("Standalone", request("a", 4, HOPPER), request("b", 4, HOPPER))),
            )
        ],
        [{0: ("c", {"e": "h"})}],
    ),
    Case(
        "every member of one engine lands on the one pool that satisfies them all",
        fleet([cluster("c", pool("a-small", "l4", 4), pool("b-big", "a100", 4))], [L4, A100]),
        [
            deployment(
                "d",
                engine(
                    "gang",
                    member("Leader", request("gpu", 1, mem_at_least("35Gi"))),
                    member("Worker", request("gpu", 1, mem_at_least("20Gi")), nodes=2),
                ),
            )
        ],
        [{0: ("c", {"gang": "b-big"})}],
    ),
    Case(
        "an engine whose members need different pools is not split",
        fleet([cluster("c", pool("l4", "l4", 4), pool("h", "h100x8", 4))], [L4, H100X8]),
        [
            deployment(
                "d",
                engine(
                    "gang",
                    member("Leader", request("gpu", 1, HOPPER)),
                    member(
                        "Worker",
                        request(
                            "gpu",
                            1,
                            'device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"',
                        ),
                        nodes=1,
                    ),
                ),
            )
        ],
        [{}],
        [1],
        [
            [
                'c: no pool satisfies engine "gang": pool h: member 1 (Worker): device "gpu" matched '
                'no device (selector 1); pool l4: member 0 (Leader): device "gpu" matched no device '
                "(selector 1)"
            ]
        ],
    ),
    Case(
        "engines of one replica share a cluster but may use different pools",
        fleet(
            [
                cluster("a-only-l4", pool("l4", "l4", 2)),
                cluster("b-both", pool("l4", "l4", 2), pool("h", "h100x8", 2)),
            ],
            [L4, H100X8],
        ),
        [
            deployment(
                "pd",
                engine("prefill", member("Standalone", request("gpu", 8, HOPPER))),
                engine("decode", member("Standalone", request("gpu", 1, mem_at_least("20Gi")))),
            )
        ],
        [{0: ("b-both", {"prefill": "h", "decode": "h"})}],
    ),
    Case(
        "node cost is pods times copies: a 1+3 gang with 2 copies needs 8 nodes",
        fleet(
            [cluster("a", pool("h", "h100x8", 7)), cluster("b", pool("h", "h100x8", 8))], [H100X8]
        ),
        [
            deployment(
                "d",
                engine(
                    "g",
                    member("Leader", request("gpu", 8, HOPPER)),
                    member("Worker", request("gpu", 8, HOPPER), nodes=3),
                    copies=2,
                ),
            )
        ],
        [{0: ("b", {"g": "h"})}],
    ),
    Case(
        "a member without nodeSelector costs nothing and rides along on the engine's pool",
        fleet([cluster("c", pool("h", "h100x8", 1))], [H100X8]),
        [
            deployment(
                "d",
                engine("g", member("Leader"), member("Worker", request("gpu", 8, HOPPER), nodes=1)),
            )
        ],
        [{0: ("c", {"g": "h"})}],
    ),
    Case(
        "a member matching only a Synthetic device claims nothing and costs nothing",
        fleet([cluster("c", pool("h", "h100x8", 1))], [H100X8]),
        [
            deployment(
                "d",
                engine(
                    "g",
                    member("Leader", request("nic", 1, INFINIBAND)),
                    member("Worker", request("gpu", 8, HOPPER), nodes=1),
                ),
            )
        ],
        [{0: ("c", {"g": "h"})}],
    ),
    Case(
        "a claimable GPU request may not settle for a pool whose only match is synthetic",
        fleet(
            [cluster("c", pool("fake", "fakegpu", 4)), cluster("d", pool("h", "h100x8", 1))],
            [H100X8, hw("fakegpu", nic(8, link="infiniband"))],
        ),
        [
            deployment(
                "x", engine("e", member("Standalone", request("any", 1, 'device.driver != ""')))
            )
        ],
        [{0: ("d", {"e": "h"})}],
    ),
    Case(
        "an engine whose members claim no DRA device is not placed",
        fleet([cluster("c", pool("h", "h100x8", 1))], [H100X8]),
        [deployment("d", engine("e", member("Standalone", request("nic", 1, INFINIBAND))))],
        [{}],
        [1],
        [
            [
                'c: no pool satisfies engine "e": engine "e" claims no DRA device on class "h100x8" '
                "(at least one member must request a DRA device)"
            ]
        ],
    ),
    Case(
        "the ledger is shared by deployments so a pool is never overcommitted",
        fleet([cluster("c", pool("p", "l4", 1))], [L4]),
        [deployment("first"), deployment("second")],
        [{0: ("c", {"engine": "p"})}, {}],
        [0, 1],
        [[], ["c: pool p has 0 of 1 needed nodes free"]],
    ),
    Case(
        "existing replicas of other deployments hold their nodes",
        fleet(
            [cluster("c", pool("p", "l4", 2))], [L4], [replica("other", 0, "c", ("engine", "p", 2))]
        ),
        [deployment("d")],
        [{}],
        [1],
        [["c: pool p has 0 of 1 needed nodes free"]],
    ),
    Case(
        "a replica pinned to a pool that no longer exists charges nothing",
        fleet(
            [cluster("c", pool("p", "l4", 1))],
            [L4],
            [replica("other", 0, "c", ("engine", "gone", 5))],
        ),
        [deployment("d")],
        [{0: ("c", {"engine": "p"})}],
    ),
    Case(
        "an existing replica is retained even on a degraded cluster",
        fleet(
            [cluster("a", pool("p", "l4"), ready=False), cluster("b", pool("p", "l4"))],
            [L4],
            [replica("d", 0, "a", ("engine", "p", 1))],
        ),
        [deployment("d")],
        [{0: ("a", {"engine": "p"})}],
    ),
    Case(
        "a not Ready cluster gets no new replicas",
        fleet([cluster("a", pool("p", "l4"), ready=False)], [L4]),
        [deployment("d")],
        [{}],
        [1],
        [["a: not Ready (Ready condition is False)"]],
    ),
    Case(
        "a retained replica is charged its grown template once, never twice",
        fleet([cluster("c", pool("p", "l4", 2))], [L4], [replica("d", 0, "c", ("engine", "p", 1))]),
        [deployment("d", standalone(copies=2), replicas=2)],
        [{0: ("c", {"engine": "p"})}],
        [1],
        [["c: pool p has 0 of 2 needed nodes free"]],
    ),
    Case(
        "an edit that no longer matches the pinned pool re-places the replica",
        fleet(
            [cluster("a", pool("p", "l4")), cluster("b", pool("q", "a100"))],
            [L4, A100],
            [replica("d", 0, "a", ("engine", "p", 1))],
        ),
        [deployment("d", standalone(memory="35Gi"))],
        [{0: ("b", {"engine": "q"})}],
        [0],
        [[]],
        [
            [
                (
                    0,
                    'engine "engine" no longer fits pool p: device "gpu" matched no device (selector 1)',
                )
            ]
        ],
    ),
    Case(
        "a replica whose pool moved elsewhere on the same cluster keeps neither name nor node",
        fleet(
            [cluster("a", pool("p", "l4", 1), pool("q", "a100", 1))],
            [L4, A100],
            [replica("d", 0, "a", ("engine", "p", 1))],
        ),
        [deployment("d", standalone(memory="35Gi"))],
        [{1: ("a", {"engine": "q"})}],
    ),
    Case(
        "the shortfall spreads over clusters with the fewest replicas, ties by name",
        fleet(
            [
                cluster("c", pool("p", "l4", 4)),
                cluster("a", pool("p", "l4", 4)),
                cluster("b", pool("p", "l4", 4)),
            ],
            [L4],
            [replica("d", 0, "a", ("engine", "p", 1))],
        ),
        [deployment("d", replicas=4)],
        [
            {
                0: ("a", {"engine": "p"}),
                1: ("b", {"engine": "p"}),
                2: ("c", {"engine": "p"}),
                3: ("a", {"engine": "p"}),
            }
        ],
    ),
    Case(
        "scale down drops the highest index first",
        fleet(
            [cluster("a", pool("p", "l4", 4)), cluster("b", pool("p", "l4", 4))],
            [L4],
            [
                replica("d", 0, "a", ("engine", "p", 1)),
                replica("d", 1, "b", ("engine", "p", 1)),
                replica("d", 2, "a", ("engine", "p", 1)),
            ],
        ),
        [deployment("d", replicas=1)],
        [{0: ("a", {"engine": "p"})}],
        [0],
        [[]],
        [[(1, "scaled down to 1"), (2, "scaled down to 1")]],
    ),
    Case(
        "scaling to zero removes every replica",
        fleet([cluster("a", pool("p", "l4"))], [L4], [replica("d", 0, "a", ("engine", "p", 1))]),
        [deployment("d", replicas=0)],
        [{}],
        [0],
        [[]],
        [[(0, "scaled down to 0")]],
    ),
    Case(
        "a replica whose cluster is gone is placed again elsewhere and stops counting",
        fleet(
            [cluster("b", pool("p", "l4", 1))], [L4], [replica("d", 0, "gone", ("engine", "p", 1))]
        ),
        [deployment("d")],
        [{0: ("b", {"engine": "p"})}],
        [0],
        [[]],
        [[(0, "cluster gone no longer exists")]],
    ),
    Case(
        "a new replica takes the lowest free index",
        fleet([cluster("a", pool("p", "l4", 4))], [L4], [replica("d", 1, "a", ("engine", "p", 1))]),
        [deployment("d", replicas=2)],
        [{0: ("a", {"engine": "p"}), 1: ("a", {"engine": "p"})}],
    ),
    Case(
        "the cache's clusterSelector narrows where new replicas go",
        fleet(
            [
                cluster("a", pool("p", "l4"), tier="std"),
                cluster("b", pool("p", "l4"), tier="frontier"),
            ],
            [L4],
            caches=[cache("weights", tier="frontier")],
        ),
        [deployment("d", cache="weights")],
        [{0: ("b", {"engine": "p"})}],
    ),
    Case(
        "the cache's and the deployment's selectors must both match",
        fleet(
            [
                cluster("a", pool("p", "l4"), tier="frontier", region="eu"),
                cluster("b", pool("p", "l4"), tier="std", region="us"),
            ],
            [L4],
            caches=[cache("weights", tier="frontier")],
        ),
        [deployment("d", cache="weights", region="us")],
        [{}],
        [1],
        [
            [
                "a: labels do not match clusterSelector modelplane.ai/region=us",
                'b: outside the footprint of ModelCache "weights" (clusterSelector modelplane.ai/tier=frontier)',
            ]
        ],
    ),
    Case(
        "a missing cache is an error and placed replicas stay",
        fleet([cluster("a", pool("p", "l4", 2))], [L4], [replica("d", 0, "a", ("engine", "p", 1))]),
        [deployment("d", cache="nope", replicas=2)],
        [{0: ("a", {"engine": "p"})}],
        [1],
        [[]],
        [[]],
        ['spec.modelCacheRef.name: ModelCache "nope" does not exist in namespace "ml-team"'],
    ),
    Case(
        "an invalid selector is an error and placed replicas stay",
        fleet([cluster("a", pool("p", "l4", 2))], [L4], [replica("d", 0, "a", ("engine", "p", 1))]),
        [
            deployment(
                "d",
                engine("engine", member("Standalone", request("gpu", 1, "device.capacity["))),
                replicas=0,
            )
        ],
        [{0: ("a", {"engine": "p"})}],
        [0],
        [[]],
        [[]],
    ),
    Case(
        "a pool whose class does not exist hosts nothing and says so",
        fleet([cluster("a", pool("p", "missing"))], [L4]),
        [deployment("d")],
        [{}],
        [1],
        [['a: no pool satisfies engine "engine": InferenceClass "missing" does not exist']],
    ),
    Case(
        "a device published with count 0 and a pool of 0 nodes host nothing",
        fleet([cluster("a", pool("p", "zero", 4)), cluster("b", pool("p", "l4", 0))], [ZERO, L4]),
        [deployment("d")],
        [{}],
        [1],
        [
            [
                'a: no pool satisfies engine "engine": device "gpu" matched no device (class "zero" has no DRA devices)',
                "b: pool p has 0 of 1 needed nodes free",
            ]
        ],
    ),
    Case(
        "a device missing the attribute a selector reads does not match, and the reason says so",
        fleet([cluster("a", pool("p", "l4"))], [L4]),
        [
            deployment(
                "d",
                engine(
                    "e",
                    member(
                        "Standalone",
                        request(
                            "gpu",
                            1,
                            'device.attributes["gpu.nvidia.com"].cudaComputeCapability.isGreaterThan(semver("8.0.0"))',
                        ),
                    ),
                ),
            )
        ],
        [{}],
        [1],
    ),
    Case(
        "no clusters at all is reported plainly",
        fleet([], [L4]),
        [deployment("d")],
        [{}],
        [1],
        [["no InferenceCluster exists"]],
    ),
    Case(
        "a retained replica is charged what its current shape needs, not its cost when placed",
        fleet([cluster("c", pool("p", "l4", 2))], [L4], [replica("a", 0, "c", ("e", "p", 1))]),
        [
            deployment(
                "a",
                engine(
                    "e",
                    member("Leader", request("gpu", 1)),
                    member("Worker", request("gpu", 1), nodes=1),
                ),
            ),
            deployment("b", engine("e", member("Standalone", request("gpu", 1)))),
        ],
        [{0: ("c", {"e": "p"})}, {}],
        [0, 1],
        [[], ["c: pool p has 0 of 1 needed nodes free"]],
    ),
    Case(
        "a retained replica whose new cost no longer fits its pool is re-placed elsewhere",
        fleet(
            [cluster("c", pool("p", "l4", 2)), cluster("d", pool("p", "l4", 2))],
            [L4],
            [replica("a", 0, "c", ("e", "p", 1)), replica("b", 0, "c", ("e", "p", 1))],
        ),
        [
            deployment(
                "a",
                engine(
                    "e",
                    member("Leader", request("gpu", 1)),
                    member("Worker", request("gpu", 1), nodes=1),
                ),
            ),
            deployment("b", engine("e", member("Standalone", request("gpu", 1)))),
        ],
        [{0: ("d", {"e": "p"})}, {0: ("c", {"e": "p"})}],
        [0, 0],
        removed=[
            [
                (
                    0,
                    "no longer fits pool p on c: its engines now need 2 nodes there (1 when "
                    "placed) and the pool has 0 more free",
                )
            ],
            [],
        ],
    ),
    Case(
        "a replica that grows keeps its pool when a later deployment scaled down frees the nodes",
        fleet(
            [cluster("c", pool("p", "l4", 2))],
            [L4],
            [replica("a", 0, "c", ("e", "p", 1)), replica("b", 0, "c", ("e", "p", 1))],
        ),
        [
            deployment(
                "a",
                engine(
                    "e",
                    member("Leader", request("gpu", 1)),
                    member("Worker", request("gpu", 1), nodes=1),
                ),
            ),
            deployment("b", engine("e", member("Standalone", request("gpu", 1))), replicas=0),
        ],
        [{0: ("c", {"e": "p"})}, {}],
        [0, 0],
        removed=[[], [(0, "scaled down to 0")]],
    ),
    Case(
        "a replica that grows keeps its pool when a later deployment's replica shrinks",
        fleet(
            [cluster("c", pool("p", "l4", 3))],
            [L4],
            [replica("a", 0, "c", ("e", "p", 1)), replica("b", 0, "c", ("e", "p", 2))],
        ),
        [
            deployment(
                "a",
                engine(
                    "e",
                    member("Leader", request("gpu", 1)),
                    member("Worker", request("gpu", 1), nodes=1),
                ),
            ),
            deployment("b", engine("e", member("Standalone", request("gpu", 1)))),
        ],
        [{0: ("c", {"e": "p"})}, {0: ("c", {"e": "p"})}],
        [0, 0],
        removed=[[], []],
    ),
    Case(
        "a replica that shrinks gives its nodes back at once",
        fleet([cluster("c", pool("p", "l4", 2))], [L4], [replica("a", 0, "c", ("e", "p", 2))]),
        [
            deployment("a", engine("e", member("Standalone", request("gpu", 1)))),
            deployment("b", engine("e", member("Standalone", request("gpu", 1)))),
        ],
        [{0: ("c", {"e": "p"})}, {0: ("c", {"e": "p"})}],
        [0, 0],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    placements = schedule_all(case.deployments, case.fleet)
    assert [summary(p) for p in placements] == case.placed
    if case.unscheduled:
        assert [p.unscheduled for p in placements] == case.unscheduled
    if case.reasons:
        assert [list(p.reasons) for p in placements] == case.reasons
    if case.removed:
        assert [[(r.replica.index, r.why) for r in p.removed] for p in placements] == case.removed
    if case.error:
        assert [p.error for p in placements] == case.error


def test_an_invalid_selector_names_the_object_and_field_then_engine_member_and_device() -> None:
    placement = schedule_all(
        [
            deployment(
                "d",
                standalone("first"),
                engine(
                    "e",
                    member("Leader", request("gpu", 1, mem_at_least("1Gi"))),
                    member("Worker", request("gpu", 1, mem_at_least("1Gi"), "device.capacity[")),
                ),
            )
        ],
        fleet([cluster("a", pool("p", "l4"))], [L4]),
    )[0]
    assert placement.error is not None
    assert placement.error.startswith(
        "ModelDeployment ml-team/d: spec.engines[1].members[1].nodeSelector.devices[0]"
        '.selectors[1].cel: invalid selector of engine "e" member 1 (Worker) device "gpu": '
    )


def test_a_runtime_error_reason_names_the_missing_attribute() -> None:
    placement = schedule_all(
        [
            deployment(
                "d",
                engine(
                    "e",
                    member(
                        "Standalone",
                        request(
                            "gpu",
                            1,
                            'device.attributes["gpu.nvidia.com"].cudaComputeCapability == semver("8.0.0")',
                        ),
                    ),
                ),
            )
        ],
        fleet([cluster("a", pool("p", "l4"))], [L4]),
    )[0]
    (reason,) = placement.reasons
    assert reason.startswith(
        'a: no pool satisfies engine "e": device "gpu" matched no device (selector 1: '
    )
    assert "cudaComputeCapability" in reason
