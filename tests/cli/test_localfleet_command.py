"""`modelplane localfleet ...` is the local fleet's own command line, flags and help included."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_up_installs_the_chart_on_a_fleet_with_the_given_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[list[str]] = []

    def harness(arguments: list[str]) -> int:
        handed.append(arguments)
        return 0

    monkeypatch.setattr("modelplane.cli.main._run_localfleet", harness)
    assert main(["up", "--state", "/tmp/s", "-f", "a.yaml", "-f", "b.yaml"]) == 0
    assert main(["up", "--tour", "--state", "/tmp/s"]) == 0
    assert handed == [
        ["up", "--chart", "--state", "/tmp/s", "--file=a.yaml", "--file=b.yaml"],
        ["tour", "--state", "/tmp/s"],
    ]


def test_up_tour_refuses_clusters_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--tour", "-f", "a.yaml"]) == 2
    assert "--tour brings its own clusters" in capsys.readouterr().err


def test_up_without_root_says_so_before_building_anything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    built: list[object] = []
    monkeypatch.setattr(
        "modelplane_localfleet.controlplane.prepare", lambda *args, **kw: built.append(args)
    )
    assert main(["up", "--state", str(tmp_path / "fleet")]) == 2
    assert built == [], "no image or helm build before the root check"
    assert "needs root" in capsys.readouterr().err


def test_a_failed_chart_install_is_an_error_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelplane_localfleet.controlplane import InstallError
    from modelplane_localfleet.fleet import Fleet

    def refused(*_args: object, **_kw: object) -> None:
        raise InstallError("helm install of modelplane failed: values don't meet the schema")

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr("modelplane_localfleet.controlplane.prepare", lambda *a, **k: "sha256:0")
    monkeypatch.setattr(Fleet, "up", lambda *a, **k: 0.0)
    monkeypatch.setattr("modelplane_localfleet.controlplane.install", refused)
    assert main(["up", "--state", str(tmp_path / "fleet")]) == 2
    assert capsys.readouterr().err == (
        "error: helm install of modelplane failed: values don't meet the schema\n"
    )
