"""Tests of the modelplane.cel public API contract (beyond the differential test)."""

from __future__ import annotations

import pytest
from modelplane.cel import Attribute, Device, SelectorError, Verdict, compile_selector, matches

H100 = Device(
    driver="gpu.nvidia.com",
    attributes=(
        ("architecture", Attribute("string", "Hopper")),
        ("cudaComputeCapability", Attribute("version", "9.0.0")),
        ("dra.net/numaNode", Attribute("int", 1)),
    ),
    capacity=(("memory", "81559Mi"),),
)

VERDICTS = [
    (
        "a matching selector matches",
        'device.attributes["gpu.nvidia.com"].architecture == "Hopper"',
        Verdict(True),
    ),
    (
        "81559Mi does not satisfy at least 80Gi",
        'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0',
        Verdict(False),
    ),
    (
        "a qualified key lives under its own domain",
        'device.attributes["dra.net"].numaNode == 1',
        Verdict(True),
    ),
    (
        "a missing attribute does not match and says why",
        'device.attributes["gpu.nvidia.com"].power > 1',
        Verdict(False, "no such key: power"),
    ),
]

COMPILE_ERRORS = [
    ("comparing the driver with an int", "device.driver == 1", "no matching overload"),
    ("a non-bool result", "device.driver", "must evaluate to bool"),
    ("an unknown function", "frob(1)", "undeclared reference"),
    ("a syntax error", "device.driver ==", "syntax error"),
]


@pytest.mark.parametrize(
    ("expression", "verdict"), [c[1:] for c in VERDICTS], ids=[c[0] for c in VERDICTS]
)
def test_verdicts(expression: str, verdict: Verdict) -> None:
    assert matches(compile_selector(expression), H100) == verdict


@pytest.mark.parametrize(
    ("expression", "message"),
    [c[1:] for c in COMPILE_ERRORS],
    ids=[c[0] for c in COMPILE_ERRORS],
)
def test_compile_errors_are_one_line(expression: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message) as info:
        compile_selector(expression)
    assert "\n" not in str(info.value)


def test_compiling_is_cached_and_selectors_are_values() -> None:
    first = compile_selector("device.driver != ''")
    assert compile_selector("device.driver != ''") is first
    assert hash(first) == hash(compile_selector("device.driver != ''"))


def test_a_device_with_an_invalid_version_never_matches() -> None:
    device = Device("d", (("v", Attribute("version", "1.02.0")),))
    verdict = matches(compile_selector("true"), device)
    assert not verdict.matched
    assert verdict.reason is not None
    assert "semantic version" in verdict.reason


def test_many_devices_evaluate_independently() -> None:
    """Behaviour only; the evaluation speed is measured by tools/bench, not asserted."""
    selector = compile_selector(
        'device.capacity["gpu.nvidia.com"].memory.isGreaterThan(quantity("40Gi")) && '
        'device.attributes["gpu.nvidia.com"].cudaComputeCapability.isGreaterThan(semver("8.0.0"))'
    )
    devices = [
        Device(H100.driver, H100.attributes, (("memory", f"{40950 + i}Mi"),)) for i in range(200)
    ]
    verdicts = [matches(selector, device) for device in devices]
    assert [v.matched for v in verdicts] == [40950 + i > 40 * 1024 for i in range(200)]
    assert all(v.reason is None for v in verdicts)
