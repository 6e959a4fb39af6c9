"""The command line: the hop listener's port, the API keys' namespace, and what it refuses."""

from __future__ import annotations

import pytest
from gateway_config.__main__ import main, parser


def test_the_hop_port_defaults_to_8001_and_can_be_set() -> None:
    assert parser().parse_args([]).hop_port == 8001
    assert parser().parse_args(["--hop-port", "9000"]).hop_port == 9000


@pytest.mark.parametrize(
    "argv",
    [
        ["--hop-port", "80"],
        ["--gateway-port", "8001"],
        ["--hop-port", "0"],
        ["--hop-port", "70000"],
    ],
)
def test_a_hop_port_equal_to_the_gateway_port_or_out_of_range_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8090", "host 127.0.0.1 is a loopback address"),
        ("activator:8090", "scheme 'activator' is not http or https"),
        ("http://activator:8090", "host 'activator' is not fully qualified"),
    ],
)
def test_an_activator_url_that_cannot_be_a_backend_is_refused_naming_the_flag(
    url: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--activator-url", url])
    assert exited.value.code == 2
    logged = capsys.readouterr().err
    assert "bad --activator-url" in logged
    assert why in logged


def test_api_keys_are_read_in_a_namespace_of_their_own() -> None:
    args = parser().parse_args([])
    assert (args.api_key_namespace, args.namespace) == ("modelplane-api-keys", "modelplane-system")
    assert parser().parse_args(["--api-key-namespace", "keys"]).api_key_namespace == "keys"


def test_the_controllers_namespace_is_refused_as_the_key_namespace() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--api-key-namespace", "team-a", "--namespace", "team-a"])
    assert exited.value.code == 2


def test_the_settle_time_defaults_to_3_s_and_a_negative_one_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parser().parse_args([]).settle_seconds == 3
    with pytest.raises(SystemExit) as exited:
        main(["--settle-seconds", "-1"])
    assert exited.value.code == 2
    assert "bad --settle-seconds" in capsys.readouterr().err
