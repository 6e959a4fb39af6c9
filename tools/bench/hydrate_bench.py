"""Measures the hydration job: throughput against `hf download`; bytes fetched twice after a kill.

Writes a synthetic repository (N safetensors shards) into a temporary hub folder and
serves it with `modelplane-hubsim` on loopback (its own process). Then, alternating,
`modelplane-hydrate` (which also checks every file's sha256) and huggingface_hub's own
`hf download --local-dir` fetch it into a fresh folder, each as a process of its own,
timed from spawn to exit, progress bars off for both. Prints each run, the medians and
their ratio (hydrate over hf). With `--kill-runs K`, a throttled hub serves the same
repository while the job is killed (SIGKILL) half-way and run again, K times: prints the
bytes the hub sent beyond the repository's size (fetched twice). A benchmark, not a test:
it prints figures and never fails on them.

    .venv/bin/python tools/bench/hydrate_bench.py [--runs 3] [--shards 8] [--shard-mib 64]
        [--kill-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from modelplane_hubsim import seed

MIB = 1 << 20
REPO = "bench/synthetic-model"
BIN = Path(sys.executable).parent


class Hubsim:
    """`modelplane-hubsim` in its own process on a free loopback port."""

    def __init__(self, root: Path, throttle_mib_s: float | None = None) -> None:
        extra = ["--throttle-mib-s", str(throttle_mib_s)] if throttle_mib_s else []
        self.process = subprocess.Popen(
            [BIN / "modelplane-hubsim", "--root", root, "--port", "0", *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        serving = next(line for line in self.process.stdout if line.startswith("serving "))
        self.endpoint = serving.split(" at ")[-1].strip()
        # The first listing hashes every file: keep that out of the timings.
        self.get(f"/api/models/{REPO}?blobs=true")

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.endpoint + path, timeout=600) as answer:
            return json.loads(answer.read())

    def bytes_sent(self) -> int:
        stats = self.get("/_hubsim/stats")
        assert isinstance(stats, dict)
        return int(stats["bytesSent"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def timed(command: list[str | Path], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def throughput(hub: Hubsim, work: Path, runs: int, total: int) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(work / "hf-home"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    commands: dict[str, list[str | Path]] = {
        "hydrate": [BIN / "modelplane-hydrate", "--repo", REPO, "--dir", work / "out"],
        "hf download": [BIN / "hf", "download", REPO, "--local-dir", work / "out"],
    }
    rates: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(runs):
        for name, command in commands.items():
            shutil.rmtree(work / "out", ignore_errors=True)
            wall, cpu = timed(command, env)
            rates[name].append(total / MIB / wall)
            rate = total / MIB / wall
            print(f"run {run + 1} {name:12} {wall:6.2f} s {rate:7.1f} MiB/s cpu {cpu:5.2f} s")
    shutil.rmtree(work / "out", ignore_errors=True)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, rate in medians.items():
        print(f"median {name:12} {rate:7.1f} MiB/s")
    print(f"ratio hydrate / hf download: {medians['hydrate'] / medians['hf download']:.2f}")


def killed_and_resumed(root: Path, work: Path, runs: int, total: int) -> None:
    """Kills the job half-way through a throttled download, runs it again, counts the waste."""
    hub = Hubsim(root, throttle_mib_s=max(16.0, total / MIB / 8))  # about 8 s per repository
    try:
        wasted = []
        for run in range(runs):
            out = work / "killed"
            shutil.rmtree(out, ignore_errors=True)
            start = hub.bytes_sent()
            command: list[str | Path] = [
                BIN / "modelplane-hydrate", "--repo", REPO, "--dir", out,
                "--endpoint", hub.endpoint, "--interval", "0.2",
            ]  # fmt: skip
            job = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            status_file = out / ".modelplane" / "status.json"
            while job.poll() is None:
                status = json.loads(status_file.read_text()) if status_file.exists() else {}
                if status.get("bytesDone", 0) > total // 2:
                    job.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.05)
            job.wait()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            twice = hub.bytes_sent() - start - total
            wasted.append(twice)
            share = 100 * twice / total
            print(f"kill {run + 1}: fetched twice {twice / MIB:.2f} MiB ({share:.2f}%)")
        median = statistics.median(wasted)
        share = 100 * median / total
        print(f"median fetched twice after a kill: {median / MIB:.2f} MiB ({share:.2f}%)")
        shutil.rmtree(work / "killed", ignore_errors=True)
    finally:
        hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--shard-mib", type=int, default=64)
    parser.add_argument("--kill-runs", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hydrate-bench-") as scratch:
        work = Path(scratch)
        files = seed.synthetic_model(args.shards, args.shard_mib * MIB)
        seed.write_revision(work / "hub", REPO, "main", files)
        total = sum(len(b) for b in files.values())
        del files
        print(f"repository: {args.shards} shards and 2 small files, {total / MIB:.0f} MiB")
        hub = Hubsim(work / "hub")
        try:
            throughput(hub, work, args.runs, total)
        finally:
            hub.stop()
        if args.kill_runs:
            killed_and_resumed(work / "hub", work, args.kill_runs, total)


if __name__ == "__main__":
    main()
