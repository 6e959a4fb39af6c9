"""What the fleet benchmarks share: the harness command line and a fleet for one run.

`harness(ARGS)` runs `modelplane-localfleet ARGS` as a user would.
`fleet_in(WORK, FILE)` brings a fleet up from FILE (None: the control cluster
alone) with its state in `WORK/state`, moves the calling thread into its network
namespace and yields the `Fleet`; afterwards it leaves the namespace and tears
the fleet down (`down --purge`), also when the benchmark fails. A failed `up`
stops the benchmark with its output.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from modelplane_localfleet.fleet import Fleet


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelplane_localfleet", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@contextlib.contextmanager
def fleet_in(work: Path, fleet_file: Path | None) -> Iterator[Fleet]:
    state = work / "state"
    files = [] if fleet_file is None else ["-f", str(fleet_file)]
    up = harness("up", *files, "--state", str(state))
    if up.returncode != 0:
        harness("down", "--state", str(state), "--purge")
        raise SystemExit(f"modelplane-localfleet up failed:\n{up.stdout}\n{up.stderr}")
    fleet = Fleet(state)
    fleet.namespace.enter()
    try:
        yield fleet
    finally:
        fleet.namespace.leave()
        harness("down", "--state", str(state), "--purge")
