"""The activator's command line: settings from the flags, errors naming the flag."""

from __future__ import annotations

import pytest
from activator.__main__ import config, parser
from activator.app import Config


def test_the_flags_become_the_settings() -> None:
    args = parser().parse_args(
        ["--listen=10.0.0.5:8090", "--status-address=10.0.0.5:9096", "--name=a-1",
         "--report-interval=1.5", "--max-body-mib=2"]
    )  # fmt: skip
    assert config(args) == Config(
        host="10.0.0.5", port=8090, status_host="10.0.0.5", status_port=9096, name="a-1",
        report_interval_s=1.5, max_body_bytes=2 * 1024 * 1024,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--report-interval=6"], "--report-interval: must be above 0 and at most 5 seconds"),
        (["--max-body-mib=0"], "--max-body-mib: must be above 0"),
        (["--listen=somewhere"], "--listen: 'somewhere' is not host:port"),
    ],
)
def test_an_unusable_flag_is_named(flags: list[str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        config(parser().parse_args(flags))


def test_an_unusable_command_line_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from activator.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["--report-interval=0"])
    assert exit_.value.code == 2
    assert "--report-interval" in capsys.readouterr().err
