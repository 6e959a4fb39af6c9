"""The hydration job against the hub double on loopback, through the real huggingface_hub
client: what lands on the volume, the marker, the status file, and each failure's message."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from modelplane_hubsim import seed
from modelplane_hubsim.server import Throttle

# The `hub` fixture (conftest.py): the hub double on loopback and the job run against it.
Hub = Any
MIB = 1024 * 1024


def test_a_repository_lands_verified_with_its_commit(hub: Hub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run = hub.hydrate(cache, "--repo", hub.model, "--size-gib", "1")
    assert run.code == 0, run.status
    assert hub.cached(cache) == hub.files(hub.model)
    commit = hub.server.hub.snapshot(hub.model, "main", hub.server.hub.settings(hub.model)).commit
    marker = json.loads((cache / ".modelplane" / "ready.json").read_text())
    assert (marker["repo"], marker["revision"], marker["commit"]) == (hub.model, "main", commit)
    total = sum(len(b) for b in hub.files(hub.model).values())
    assert run.status | {"updated": ""} == {
        "repo": hub.model,
        "revision": "main",
        "phase": "Ready",
        "step": "done",
        "commit": commit,
        "bytesDone": total,
        "bytesTotal": total,
        "bytesFetched": total,
        "filesDone": 5,
        "filesTotal": 5,
        "message": f"{hub.model} at {commit}: 5 files, 6.0 MiB, verified",
        "updated": "",
    }


def test_a_second_run_fetches_nothing_and_asks_the_hub_nothing(hub: Hub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert hub.hydrate(cache, "--repo", hub.model).code == 0
    hub.server.stats.reset()
    again = hub.hydrate(cache, "--repo", hub.model)
    assert (again.code, again.status["phase"], again.status["bytesFetched"]) == (0, "Ready", 0)
    assert list(hub.server.stats.requests) == []


def test_a_moving_branch_is_resolved_once(hub: Hub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = hub.hydrate(cache, "--repo", hub.model)
    # Every file was fetched at the resolved commit, never at the branch.
    resolves = [r for r in hub.server.stats.requests if "/resolve/" in r]
    assert len(resolves) == 5
    assert all(f"/resolve/{first.status['commit']}/" in r for r in resolves), resolves
    # The branch moves to other content: the volume keeps the commit it resolved.
    seed.write_revision(hub.root, hub.model, "v2", seed.synthetic_model(1, MIB, seed=9))
    seed.configure(hub.root, hub.model, branches={"main": "v2"})
    again = hub.hydrate(cache, "--repo", hub.model)
    assert again.status["commit"] == first.status["commit"]
    assert hub.cached(cache) == hub.files(hub.model, "main")
    # A fresh volume resolves the branch anew.
    fresh = hub.hydrate(tmp_path / "fresh", "--repo", hub.model)
    assert fresh.status["commit"] != first.status["commit"]
    assert hub.cached(tmp_path / "fresh") == hub.files(hub.model, "v2")


def test_a_new_revision_replaces_the_files_of_the_old_one(hub: Hub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert hub.hydrate(cache, "--repo", hub.model).code == 0
    seed.write_revision(hub.root, hub.model, "v2", seed.synthetic_model(1, MIB, seed=9))
    run = hub.hydrate(cache, "--repo", hub.model, "--revision", "v2")
    assert run.code == 0, run.status
    assert hub.cached(cache) == hub.files(hub.model, "v2")


def test_a_transfer_broken_mid_file_resumes_where_it_broke(hub: Hub, tmp_path: Path) -> None:
    hub.server.cut_after = 768 * 1024  # every file answer breaks after 768 KiB
    cache = tmp_path / "cache"
    run = hub.hydrate(cache, "--repo", hub.model)
    assert run.code == 0, run.status
    assert hub.cached(cache) == hub.files(hub.model)
    total = sum(len(b) for b in hub.files(hub.model).values())
    assert hub.server.stats.bytes_sent == total  # nothing fetched twice
    ranged = [r for r in hub.server.stats.requests if "model-00001-of-00003" in r]
    assert len(ranged) == 3  # 2 MiB in three answers of at most 768 KiB


def test_a_second_run_on_a_volume_in_use_fails_at_once(hub: Hub, tmp_path: Path) -> None:
    lock = tmp_path / "cache" / ".modelplane" / "lock"
    lock.parent.mkdir(parents=True)
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a first run would
        run = hub.hydrate(tmp_path / "cache", "--repo", hub.model)
    assert (run.code, run.status["phase"]) == (1, "Failed")
    assert run.status["message"] == f"another hydration run holds {lock}"
    assert hub.server.stats.bytes_sent == 0


def test_a_gated_repository_with_the_right_token(hub: Hub, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(hub.token + "\n")
    run = hub.hydrate(tmp_path / "cache", "--repo", hub.gated, "--token-file", str(token))
    assert run.code == 0, run.status
    assert hub.cached(tmp_path / "cache") == hub.files(hub.gated)


def test_the_token_can_come_from_hf_token(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub.token)
    assert hub.hydrate(tmp_path / "cache", "--repo", hub.gated).code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--repo", "acme/gated-model"],
            "spec.huggingFace.authSecret: acme/gated-model on {hub} is gated and no token was given (HTTP 401)",
        ),
        (
            ["--repo", "acme/gated-model", "--token-file", "{tmp}/wrong"],
            "spec.huggingFace.authSecret: the hub refused the token for acme/gated-model on {hub} (HTTP 403)",
        ),
        (
            ["--repo", "acme/gated-model", "--token-file", "{tmp}/missing"],
            "spec.huggingFace.authSecret: cannot read the token file {tmp}/missing: No such file or directory",
        ),
        (
            ["--repo", "acme/no-such-model"],
            "spec.huggingFace.repo: repository acme/no-such-model on {hub} not found (HTTP 404)",
        ),
        (
            ["--repo", "acme/tiny-model", "--revision", "v9"],
            "spec.huggingFace.revision: revision 'v9' not found in acme/tiny-model on {hub}",
        ),
    ],
    ids=[
        "gated-no-token",
        "gated-wrong-token",
        "token-file-missing",
        "unknown-repo",
        "unknown-revision",
    ],
)
def test_each_failure_names_its_cause_and_field(
    hub: Hub, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "wrong").write_text("hf_not_the_token")
    cache = tmp_path / "cache"
    run = hub.hydrate(cache, *(a.format(tmp=tmp_path) for a in args))
    assert (run.code, run.status["phase"]) == (1, "Failed")
    assert run.status["message"] == message.format(hub=hub.endpoint, tmp=tmp_path)
    assert not (cache / ".modelplane" / "ready.json").exists()


def test_a_size_below_the_repository_fails_before_fetching(hub: Hub, tmp_path: Path) -> None:
    folder = hub.root / "acme/big-model/main"
    folder.mkdir(parents=True)
    with (folder / "model.safetensors").open("wb") as f:
        f.truncate(1024**3 + 1)  # sparse: one byte over 1 GiB
    hub.server.stats.reset()
    run = hub.hydrate(tmp_path / "cache", "--repo", "acme/big-model", "--size-gib", "1")
    assert (run.code, run.status["phase"]) == (1, "Failed")
    assert run.status["message"] == (
        f"spec.huggingFace.sizeGiB: 1 GiB is below the size of acme/big-model at "
        f"{run.status['commit']} (1.00 GiB in 1 files)"
    )
    assert hub.server.stats.bytes_sent == 0


def test_a_file_corrupted_at_the_source_is_never_marked_ready(hub: Hub, tmp_path: Path) -> None:
    source = hub.root / hub.model / "main" / "model-00002-of-00003.safetensors"
    listed = hub.server.hub.snapshot(hub.model, "main", hub.server.hub.settings(hub.model))
    published = next(f.sha256 for f in listed.files if f.path == source.name)
    stat = source.stat()
    data = bytearray(source.read_bytes())
    data[-1] ^= 0xFF  # bit rot under the hub: same size and time, other content
    source.write_bytes(bytes(data))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cache = tmp_path / "cache"
    run = hub.hydrate(cache, "--repo", hub.model)
    assert (run.code, run.status["phase"]) == (1, "Failed")
    assert run.status["message"].startswith(
        f"spec.huggingFace.repo: a file of {hub.model} at {run.status['commit']} arrived "
        f"corrupted twice: model-00002-of-00003.safetensors: {stat.st_size} bytes with sha256 "
    ), run.status["message"]
    assert run.status["message"].endswith(
        f"the hub publishes {stat.st_size} bytes with {published}"
    )
    assert not (cache / ".modelplane" / "ready.json").exists()
    assert not (cache / "model-00002-of-00003.safetensors").exists()


def test_a_corrupted_partial_download_is_fetched_again(hub: Hub, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    partial = cache / ".modelplane" / "partial" / "model-00001-of-00003.safetensors"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"not what the hub has" * 1000)
    run = hub.hydrate(cache, "--repo", hub.model)
    assert run.code == 0, run.status
    assert hub.cached(cache) == hub.files(hub.model)


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root")
def test_a_full_volume_fails_naming_the_size(hub: Hub, tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to mount a small volume"
    cache = tmp_path / "cache"
    cache.mkdir()
    job = " ".join(hub.command(cache, "--repo", hub.model))
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c",
         f"mount -t tmpfs -o size=3m tmpfs {cache} && {job}; cp {cache}/.modelplane/status.json {tmp_path}/"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["phase"] == "Failed"
    assert status["message"].startswith(
        "spec.huggingFace.sizeGiB: the volume is full: 3.0 MiB free"
    )
    assert status["message"].endswith(f"6.0 MiB of {hub.model} still to fetch"), status["message"]


def test_a_job_killed_half_way_resumes_and_fetches_little_twice(
    hub: Hub, large_model: str, tmp_path: Path
) -> None:
    total = sum(len(b) for b in hub.files(large_model).values())
    hub.server.throttle = Throttle(16 * MIB)  # about 4 s for the whole repository
    hub.server.stats.reset()
    cache = tmp_path / "cache"
    job = subprocess.Popen(
        hub.command(cache, "--repo", large_model, "--interval", "0.2"), stdout=subprocess.DEVNULL
    )
    seen: dict[str, Any] = {}
    while job.poll() is None:
        status = cache / ".modelplane" / "status.json"
        seen = json.loads(status.read_text()) if status.exists() else {}
        if seen.get("bytesDone", 0) > total // 2:
            job.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert job.wait() == -signal.SIGKILL, "the job ended before it was half-way"
    assert (seen["phase"], seen["step"]) == ("Hydrating", "downloading")
    assert not (cache / ".modelplane" / "ready.json").exists()

    hub.server.throttle = None
    resumed = hub.hydrate(cache, "--repo", large_model)
    assert resumed.code == 0, resumed.status
    assert hub.cached(cache) == hub.files(large_model)
    twice = hub.server.stats.bytes_sent - total
    print(f"bytes fetched twice after a kill: {twice} of {total} ({100 * twice / total:.2f}%)")
    assert 0 <= twice < total * 0.05
    assert resumed.status["bytesFetched"] < total * 0.6
