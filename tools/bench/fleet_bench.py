"""Times `modelplane-localfleet up` and measures the fleet it brings up.

Each run: `up -f FLEET --state NEW_DIR` (fresh state: new CA, certificates, etcd
data; binaries from the warm cache), the memory the fleet's processes use once
it is up (sum of their proportional set sizes, so shared pages count once),
then `down --purge`. Prints every run and the min/median/max of the wall time
of `up` (the whole command, Python start-up included), and the disk the binary
cache uses. Needs root, like the fleet.

    sudo .venv/bin/python tools/bench/fleet_bench.py --runs 5 [-f e2e/fleet.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelplane_localfleet import binaries
from modelplane_localfleet.fleet import Fleet

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench.benchfleet import harness

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def fleet_memory(state: Path) -> tuple[int, int, int]:
    """(processes, summed PSS bytes, summed RSS bytes) of everything inside the fleet."""
    pids = Fleet(state).namespace.pids()
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return len(pids), pss, rss


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=False)
    return int(out.stdout.split()[0]) if out.stdout else 0


def summary(values: list[float]) -> str:
    return f"min {min(values):.1f}  median {statistics.median(values):.1f}  max {max(values):.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-f", "--file", default=str(ROOT / "e2e" / "fleet.yaml"))
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds before measuring memory"
    )
    args = parser.parse_args()
    walls, pss_values, rss_values = [], [], []
    for run in range(1, args.runs + 1):
        state = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
        began = time.monotonic()
        up = harness("up", "-f", args.file, "--state", str(state))
        wall = time.monotonic() - began
        if up.returncode != 0:
            print(up.stdout, up.stderr, file=sys.stderr)
            harness("down", "--state", str(state), "--purge")
            return 1
        time.sleep(args.settle)
        processes, pss, rss = fleet_memory(state)
        down = harness("down", "--state", str(state), "--purge")
        if down.returncode != 0:
            print(down.stderr, file=sys.stderr)
            return 1
        walls.append(wall)
        pss_values.append(pss / MIB)
        rss_values.append(rss / MIB)
        print(
            f"run {run}: up {wall:.1f}s; {processes} processes, "
            f"PSS {pss / MIB:,.0f} MiB, RSS {rss / MIB:,.0f} MiB after {args.settle:.0f}s"
        )
    print(f"up wall seconds:  {summary(walls)}")
    print(f"fleet PSS MiB:    {summary(pss_values)}")
    print(f"fleet RSS MiB:    {summary(rss_values)}")
    cache = binaries.default_cache() / "localfleet"
    traefik = Path(sys.executable).parent / "traefik"
    print(
        f"disk: binary cache {du(cache) / MIB:,.0f} MiB at {cache}; "
        f"traefik {du(traefik) / MIB:,.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
