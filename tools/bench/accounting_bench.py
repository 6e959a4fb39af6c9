"""How much more fits with device accounting than with the whole-node rule.

For a few synthetic fleets (`tools/bench/fleetgen`'s classes: pools of one-GPU and
eight-GPU nodes) and workload mixes of engines claiming 1, 2, 4 or 8 GPUs per pod, it
places the same deployments in the same order with every cluster in `Node` and then
in `Device` accounting, and prints the replicas and GPUs placed by each rule. Each
deployment asks for more replicas than the fleet could hold, so each rule fills the
fleet as far as it allows; deployments come smallest engine first, a round of every
size at a time (so later, larger engines meet a fleet the small ones have used).
Then the time to place each of `schedule_bench`'s 20 mixed deployments on its
1,000-cluster fleet (2,000 existing replicas), in one process, alternating Node and
Device sessions (`--rounds` each), the cyclic collector paused while placing: the
median and p99 CPU time per deployment, and the median of the session's setup (the
ledger). `--timing-only` skips the table. A benchmark: it prints figures and never
fails on them.

    .venv/bin/python tools/bench/accounting_bench.py [--rounds 9] [--timing-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from modelplane.api.validation import validate  # noqa: E402
from modelplane.scheduling import schedule_all, snapshot  # noqa: E402
from modelplane.scheduling.core import Session  # noqa: E402
from modelplane.scheduling.model import Accounting, Deployment, Fleet  # noqa: E402

from tools.bench import fleetgen, schedule_bench  # noqa: E402

MIXES = {
    "small (1-2 GPUs)": (1, 2),
    "mixed (1, 2, 4, 8 GPUs)": (1, 2, 4, 8),
    "large (4, 8 GPUs)": (4, 8),
    "whole nodes (8 GPUs)": (8,),
}
ROUNDS = 4


def fleet(clusters: int, eight_only: bool, existing: int = 0) -> Fleet:
    objects = [validate(o)[0] for o in fleetgen.fleet(clusters, existing)]
    grouped = snapshot.by_kind(objects)
    built = [snapshot.cluster(o, offline=True) for o in grouped["InferenceCluster"]]
    if eight_only:  # only the pools of eight-GPU classes
        built = [
            dataclasses.replace(c, pools=tuple(p for p in c.pools if "8x" in p.class_name))
            for c in built
        ]
    return Fleet(
        clusters=tuple(built),
        classes={c.name: c for c in map(snapshot.hardware_class, grouped["InferenceClass"])},
        replicas=tuple(snapshot.replica(o) for o in grouped.get("ModelReplica", ())),
    )


def in_mode(f: Fleet, mode: Accounting) -> Fleet:
    clusters = tuple(dataclasses.replace(c, accounting=mode) for c in f.clusters)
    return dataclasses.replace(f, clusters=clusters)


def timing(rounds: int) -> None:
    """Median CPU ms per deployment and per session setup, Node and Device alternating."""
    base = fleet(1000, eight_only=False, existing=2000)
    specs = schedule_bench.mixed_deployments(20)
    targets = [snapshot.deployment(validate(s)[0]) for s in specs]
    modes: tuple[Accounting, ...] = ("Node", "Device")
    fleets = {mode: in_mode(base, mode) for mode in modes}
    per: dict[str, list[float]] = {"Node": [], "Device": []}
    setup: dict[str, list[float]] = {"Node": [], "Device": []}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for mode, f in fleets.items():
                began = time.process_time()
                session = Session(f)
                setup[mode].append(time.process_time() - began)
                for target in targets:
                    began = time.process_time()
                    session.place(target)
                    per[mode].append(time.process_time() - began)
    finally:
        gc.enable()
    for mode in fleets:
        p99 = statistics.quantiles(per[mode], n=100)[98]
        print(
            f"1000 clusters, 20 mixed deployments, {mode:<6} accounting: "
            f"{statistics.median(per[mode]) * 1000:.2f} ms CPU per deployment (median of "
            f"{len(per[mode])}; p99 {p99 * 1000:.2f} ms), "
            f"session setup {statistics.median(setup[mode]) * 1000:.1f} ms"
        )


def deployments(sizes: tuple[int, ...], capacity: int) -> list[Deployment]:
    wanted = []
    for round_ in range(ROUNDS):
        for size in sizes:
            spec = fleetgen.deployment(f"r{round_}-g{size}", memory="20Gi", replicas=1)
            member = spec["spec"]["engines"][0]["members"][0]
            member["nodeSelector"]["devices"][0]["count"] = size
            spec["spec"]["replicas"] = capacity // size // ROUNDS + 1
            wanted.append(snapshot.deployment(validate(spec)[0]))
    return wanted


def placed(f: Fleet, wanted: list[Deployment], mode: Accounting) -> tuple[int, int]:
    result = schedule_all(wanted, in_mode(f, mode))
    replicas = sum(len(p.replicas) for p in result)
    gpus = sum(
        n for p in result for r in p.replicas for e in r.engines for pod in e.pods for _, n in pod
    )
    return replicas, gpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--timing-only", action="store_true", help="only the 1,000-cluster times")
    args = parser.parse_args()
    if args.timing_only:
        timing(args.rounds)
        return
    fleets = {
        "10 clusters, 1- and 8-GPU pools": fleet(10, eight_only=False),
        "10 clusters, 8-GPU pools only": fleet(10, eight_only=True),
        "100 clusters, 1- and 8-GPU pools": fleet(100, eight_only=False),
    }
    print(
        f"{'fleet':<34} {'mix':<25} {'GPUs':>6} {'node: replicas/GPUs':>20} "
        f"{'device: replicas/GPUs':>22} {'more replicas':>14}"
    )
    for fleet_name, f in fleets.items():
        classes = f.classes
        capacity = sum(
            p.nodes * sum(d.count for d in classes[p.class_name].devices if d.claim == "DRA")
            for c in f.clusters
            for p in c.pools
        )
        for mix_name, sizes in MIXES.items():
            wanted = deployments(sizes, capacity)
            node = placed(f, wanted, "Node")
            device = placed(f, wanted, "Device")
            more = (device[0] - node[0]) / node[0] * 100 if node[0] else 0.0
            print(
                f"{fleet_name:<34} {mix_name:<25} {capacity:>6} "
                f"{node[0]:>10}/{node[1]:<9} {device[0]:>11}/{device[1]:<10} {more:>13.0f}%"
            )
    timing(args.rounds)


if __name__ == "__main__":
    main()
