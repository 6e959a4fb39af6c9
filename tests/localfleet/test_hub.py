"""The fleet's model hub: `up --hub-root` records the folder; the control cluster serves it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from modelplane_localfleet import cli, hub
from modelplane_localfleet.cluster import Cluster


def test_the_recorded_folder_is_what_the_hub_component_serves(tmp_path: Path) -> None:
    control = cast(Cluster, SimpleNamespace(config_dir=tmp_path / "config" / "control"))
    assert hub.configured_root(control.config_dir) is None
    assert hub.hub_component(control) is None

    (tmp_path / "models").mkdir()
    hub.configure(control.config_dir, tmp_path / "models" / ".." / "models")
    assert hub.configured_root(control.config_dir) == tmp_path / "models"
    spec = hub.hub_component(control)
    assert spec is not None
    assert spec.name == "hub"
    assert spec.argv[1:] == [
        "-m", "modelplane_hubsim", f"--root={tmp_path / 'models'}", "--host=10.240.0.1",
        "--port=5080",
    ]  # fmt: skip
    assert spec.probe.url == "http://10.240.0.1:5080/_hubsim/stats"


def test_a_hub_root_that_is_not_a_folder_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(ValueError, match=f"--hub-root {missing}: not a folder"):
        hub.configure(tmp_path / "config", missing)
    code = cli.run(["up", "--hub-root", str(missing), "--state", str(tmp_path / "state")])
    assert code == 2
    assert f"error: --hub-root {missing}: not a folder" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()
