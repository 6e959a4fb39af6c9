"""Scheduler benchmark: prints medians over fresh-process runs, with peak memory.

Not a test: it never fails on a figure. See tools/bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.bench import fleetgen  # noqa: E402


def _one_run(
    kind: str, clusters: int, replicas: int, deployments: int, accounting: str = "Node"
) -> dict[str, Any]:
    """Runs inside a fresh process: builds the fleet (every cluster in `accounting`), then
    times placement only."""
    import dataclasses
    import resource

    from modelplane.api.validation import validate
    from modelplane.scheduling import snapshot
    from modelplane.scheduling.core import Session
    from modelplane.scheduling.model import Fleet

    objects = [validate(o)[0] for o in fleetgen.fleet(clusters, replicas)]
    grouped = snapshot.by_kind(objects)
    fleet = Fleet(
        clusters=tuple(
            dataclasses.replace(
                snapshot.cluster(o, offline=True),
                accounting="Device" if accounting == "Device" else "Node",
            )
            for o in grouped["InferenceCluster"]
        ),
        classes={c.name: c for c in map(snapshot.hardware_class, grouped["InferenceClass"])},
        replicas=tuple(snapshot.replica(o) for o in grouped["ModelReplica"]),
    )
    if kind == "one":
        specs = [fleetgen.deployment("target", memory="40Gi", replicas=3)]
    else:
        specs = mixed_deployments(deployments)
    targets = [snapshot.deployment(validate(s)[0]) for s in specs]
    del objects, grouped
    gc.collect()  # garbage from building the fleet is not placement's cost
    start = time.perf_counter()
    session = Session(fleet)
    placed = []
    each = []
    for target in targets:
        began = time.perf_counter()
        placed.append(session.place(target))
        each.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "each": each,
        "placed": sum(len(p.replicas) for p in placed),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def mixed_deployments(count: int) -> list[dict[str, Any]]:
    """The mix every multi-deployment scenario uses: four memory floors, 1-3 replicas,
    every fifth a Leader plus Worker gang of 8 GPUs each."""
    return [
        fleetgen.deployment(
            f"d{i:04d}",
            memory=["20Gi", "40Gi", "80Gi", "120Gi"][i % 4],
            replicas=1 + i % 3,
            gang=i % 5 == 0,
        )
        for i in range(count)
    ]


def _measure(
    kind: str, clusters: int, replicas: int, deployments: int, runs: int, accounting: str = "Node"
) -> dict[str, float]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                kind,
                str(clusters),
                str(replicas),
                str(deployments),
                accounting,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout))
    return {
        "per_deployment_ms": statistics.median(t for r in results for t in r["each"]) * 1000,
        "median_ms": statistics.median(r["seconds"] for r in results) * 1000,
        "min_ms": min(r["seconds"] for r in results) * 1000,
        "max_ms": max(r["seconds"] for r in results) * 1000,
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in results),
        "placed": results[0]["placed"],
    }


def _cli_figure(clusters: int, replicas: int, runs: int) -> dict[str, float]:
    cli = [str(ROOT / ".venv" / "bin" / "modelplane"), "schedule", "-o", "json"]
    with tempfile.TemporaryDirectory() as tmp:
        fleet_file = Path(tmp) / "fleet.yaml"
        fleet_file.write_text(yaml.safe_dump_all(fleetgen.fleet(clusters, replicas)))
        deploy_file = Path(tmp) / "deployment.yaml"
        deploy_file.write_text(yaml.safe_dump(fleetgen.deployment("target", replicas=3)))
        with_deployment: list[float] = []
        without: list[float] = []
        for _ in range(runs):
            for files, bucket in (
                ([fleet_file, deploy_file], with_deployment),
                ([fleet_file], without),
            ):
                args = cli + [a for f in files for a in ("-f", str(f))]
                start = time.perf_counter()
                subprocess.run(args, check=True, capture_output=True)
                bucket.append(time.perf_counter() - start)
    return {
        "with_ms": statistics.median(with_deployment) * 1000,
        "without_ms": statistics.median(without) * 1000,
        "difference_ms": (statistics.median(with_deployment) - statistics.median(without)) * 1000,
    }


def _cli_whole_process(clusters: int, deployments: int, runs: int) -> list[float]:
    """Wall seconds of whole `modelplane schedule -f FLEET -f DEPLOYMENTS -o table`
    processes: the fleet (with 2,000 existing replicas) and `deployments` deployments
    of the mix, in two files."""
    with tempfile.TemporaryDirectory() as tmp:
        fleet, wanted = write_inputs(Path(tmp), clusters, deployments)
        cli = [str(ROOT / ".venv" / "bin" / "modelplane"), "schedule", "-f", str(fleet)]
        cli += ["-f", str(wanted), "-o", "table"]
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(cli, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


def write_inputs(directory: Path, clusters: int, deployments: int) -> tuple[Path, Path]:
    """The whole-process scenario's input, for timing it with other tools too:
    `directory`/fleet.yaml and `directory`/deployments.yaml."""
    fleet, wanted = directory / "fleet.yaml", directory / "deployments.yaml"
    fleet.write_text(yaml.safe_dump_all(fleetgen.fleet(clusters, 2000), sort_keys=False))
    wanted.write_text(yaml.safe_dump_all(mixed_deployments(deployments), sort_keys=False))
    return fleet, wanted


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, clusters, replicas, deployments = sys.argv[2], *map(int, sys.argv[3:6])
        print(json.dumps(_one_run(kind, clusters, replicas, deployments, sys.argv[6])))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--write-inputs",
        metavar="DIR",
        help="only write the whole-process scenario's input (1,000 clusters, 20 deployments) "
        "to DIR/fleet.yaml and DIR/deployments.yaml",
    )
    args = parser.parse_args()
    if args.write_inputs:
        Path(args.write_inputs).mkdir(parents=True, exist_ok=True)
        write_inputs(Path(args.write_inputs), 1000, 20)
        return
    sizes = [100, 1000] if args.quick else [100, 1000, 5000]
    version = sys.version.split()[0]
    print(f"python {version}, {os.cpu_count()} cpus, {args.runs} fresh-process runs each")
    print(f"{'scenario':<58} {'median':>10} {'min':>10} {'max':>10} {'peak RSS':>10}")
    for clusters in sizes:
        replicas = max(2000, clusters)
        r = _measure("one", clusters, replicas, 1, args.runs)
        name = f"1 deployment, {clusters} clusters x 4 pools, {replicas} replicas in ledger"
        print(
            f"{name:<58} {r['median_ms']:>8.2f}ms {r['min_ms']:>8.2f}ms {r['max_ms']:>8.2f}ms "
            f"{r['peak_rss_mib']:>7.0f}MiB"
        )
    count = 50 if args.quick else 500
    r = _measure("many", 1000, 2000, count, args.runs)
    name = f"{count} deployments in sequence, 1000 clusters"
    print(
        f"{name:<58} {r['median_ms']:>8.1f}ms {r['min_ms']:>8.1f}ms {r['max_ms']:>8.1f}ms "
        f"{r['peak_rss_mib']:>7.0f}MiB  ({r['median_ms'] / count:.2f} ms per deployment)"
    )
    for clusters in [1000] if args.quick else [1000, 10000]:
        r = _measure("many", clusters, max(2000, clusters), 20, args.runs)
        name = f"20 deployments, {clusters} clusters: per deployment"
        print(
            f"{name:<58} {r['per_deployment_ms']:>8.2f}ms  (all 20: median "
            f"{r['median_ms']:.1f}ms, min {r['min_ms']:.1f}ms, max {r['max_ms']:.1f}ms)"
        )
    for accounting in ("Node", "Device"):
        r = _measure("many", 1000, 2000, 20, args.runs, accounting)
        name = f"20 deployments, 1000 clusters, {accounting} accounting: per deployment"
        print(f"{name:<58} {r['per_deployment_ms']:>8.2f}ms  (placed {r['placed']} replicas)")
    whole = _cli_whole_process(1000, 20, max(3, args.runs))
    name = "modelplane schedule -o table, 1000 clusters, 20 deployments"
    print(
        f"{name:<58} {statistics.median(whole) * 1000:>8.0f}ms {min(whole) * 1000:>8.0f}ms "
        f"{max(whole) * 1000:>8.0f}ms  (whole process)"
    )
    cli = _cli_figure(1000, 2000, max(3, args.runs))
    print(
        f"{'modelplane schedule, 1000 clusters: with - without deployment':<58} "
        f"{cli['difference_ms']:>8.1f}ms  "
        f"(with {cli['with_ms']:.0f}ms, without {cli['without_ms']:.0f}ms)"
    )


if __name__ == "__main__":
    main()
