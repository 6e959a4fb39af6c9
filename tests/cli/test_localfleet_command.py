"""`modelplane localfleet ...` is the local fleet's own command line, flags and help included."""

from __future__ import annotations

import pytest
from modelplane.cli.main import main


def test_localfleet_hands_every_argument_to_the_harness(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELPLANE_FLEET_STATE", raising=False)
    assert main(["localfleet", "status"]) == 2
    assert "--state DIR" in capsys.readouterr().err


def test_localfleet_help_is_the_harness_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["localfleet", "--help"])
    assert raised.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: modelplane-localfleet")
    for command in ("up", "down", "status", "exec", "add", "stop", "start", "remove"):
        assert command in out
