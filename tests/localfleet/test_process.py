"""Detached processes: found again by record, never confused with a reused pid, stopped for sure."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from modelplane_localfleet import process

TRAP_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(300)"


def test_a_spawned_process_is_running_until_stopped_and_its_output_goes_to_the_log(
    tmp_path: Path,
) -> None:
    record_path, log = tmp_path / "run" / "sleeper.json", tmp_path / "logs" / "sleeper.log"
    record = process.spawn(
        record_path,
        log,
        [sys.executable, "-c", "print('hello', flush=True); import time; time.sleep(300)"],
    )
    assert process.running(record_path) == record
    assert process.stop(record_path, grace_s=5) is True
    assert process.running(record_path) is None
    assert not record_path.exists()
    assert "hello" in log.read_text()
    assert process.stop(record_path, grace_s=1) is False, "stopping twice is harmless"


def test_a_record_whose_pid_now_belongs_to_another_process_is_not_running(tmp_path: Path) -> None:
    record_path = tmp_path / "x.json"
    record = process.spawn(record_path, tmp_path / "x.log", ["sleep", "300"])
    try:
        forged = {"pid": record.pid, "start_ticks": record.start_ticks + 1, "argv": record.argv}
        record_path.write_text(json.dumps(forged))
        assert process.running(record_path) is None
        assert process.stop(record_path, grace_s=1) is False
        assert process.start_ticks(record.pid) == record.start_ticks, (
            "the real process was not touched"
        )
    finally:
        record_path.write_text(
            json.dumps({"pid": record.pid, "start_ticks": record.start_ticks, "argv": record.argv})
        )
        process.stop(record_path, grace_s=1, abrupt=True)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    record_path, log = tmp_path / "stubborn.json", tmp_path / "stubborn.log"
    process.spawn(record_path, log, [sys.executable, "-c", TRAP_TERM])
    while "up" not in log.read_text():
        time.sleep(0.01)
    assert process.stop(record_path, grace_s=0.5) is True
    assert process.running(record_path) is None


def test_an_unreadable_record_counts_as_not_running(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    assert process.running(tmp_path / "bad.json") is None
    assert process.running(tmp_path / "missing.json") is None
