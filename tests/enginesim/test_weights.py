"""The simulator loading a model folder: config.json and safetensors checked and read whole.

The safetensors files are written here by hand from the format's definition (an 8-byte
little-endian header length, a JSON header of dtype, shape and data_offsets, the data).
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from modelplane_enginesim import weights
from modelplane_enginesim.weights import WeightsError

from tests.enginesim.sim import Sim


def safetensors(tensors: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    header, data, offset = {}, b"", 0
    for name, (dtype, shape, body) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(body)],
        }
        data += body
        offset += len(body)
    encoded = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def model_folder(root: Path, config: dict[str, object] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config or {"model_type": "llama"}))
    (root / "model-00001-of-00002.safetensors").write_bytes(
        safetensors(
            {
                "embed.weight": ("F16", [4, 8], os.urandom(64)),
                "norm.weight": ("F32", [8], os.urandom(32)),
            }
        )
    )
    (root / "model-00002-of-00002.safetensors").write_bytes(
        safetensors({"lm_head.weight": ("BF16", [1024, 512], os.urandom(1024 * 512 * 2))})
    )
    hidden = root / ".modelplane" / "partial"
    hidden.mkdir(parents=True)
    (hidden / "junk.safetensors").write_bytes(b"not a model")  # a hydration job's leftovers
    return root


def total_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def test_a_folder_is_loaded_whole_and_served_under_its_path(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    loaded = weights.load(folder)
    assert loaded.name == str(folder)
    assert loaded.files == ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    assert loaded.tensors == 3
    assert loaded.bytes_read == total_bytes(folder)


def test_the_config_may_name_the_model(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", {"_name_or_path": "acme/tiny", "model_type": "llama"})
    assert weights.load(folder).name == "acme/tiny"


def test_loading_takes_time_in_proportion_to_the_bytes_at_the_rate_cap(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    rate = 256 * 1024.0  # bytes per second
    weights.load(folder, rate, sleep, clock=lambda: clock[0])
    assert clock[0] == pytest.approx(total_bytes(folder) / rate)


def test_paths_and_names_are_told_apart(tmp_path: Path) -> None:
    assert weights.is_path("/mnt/models")
    assert weights.is_path("./m")
    assert weights.is_path(str(tmp_path))
    assert not weights.is_path("Qwen/Qwen3-0.6B")
    assert not weights.is_path("simulated-model")


def _corrupt(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (b"\x01\x02", "too short for a safetensors header"),
        (struct.pack("<Q", 1 << 40) + b"{}", "does not fit in the file"),
        (struct.pack("<Q", 5) + b"{nope", "the header is not JSON"),
        (struct.pack("<Q", 2) + b"[]", "the header is not a JSON object"),
        (
            safetensors({"w": ("U8", [16], b"x" * 16)})[:-4],
            "tensor 'w': data_offsets [0, 16] lie outside the 12 data bytes",
        ),
        (
            safetensors({"w": ("F32", [16], b"x" * 16)}),
            "tensor 'w': shape [16] of F32 needs 64 bytes, data_offsets give 16",
        ),
    ],
)
def test_a_corrupt_safetensors_file_is_refused_naming_it(
    tmp_path: Path, data: bytes, expect: str
) -> None:
    folder = model_folder(tmp_path / "m")
    path = _corrupt(folder, "model-00002-of-00002.safetensors", data)
    with pytest.raises(WeightsError) as raised:
        weights.load(folder)
    assert str(raised.value).startswith(f"{path}: ")
    assert expect in str(raised.value)


def test_a_folder_without_config_or_weights_is_refused_naming_what_is_missing(
    tmp_path: Path,
) -> None:
    with pytest.raises(WeightsError, match="the model folder does not exist"):
        weights.load(tmp_path / "absent")
    folder = model_folder(tmp_path / "m")
    (folder / "config.json").unlink()
    with pytest.raises(WeightsError, match=f"^{re.escape(str(folder / 'config.json'))}: no config"):
        weights.load(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(WeightsError, match=r"config\.json: not a JSON object"):
        weights.load(folder)
    (folder / "config.json").write_text("{}")
    for shard in folder.glob("*.safetensors"):
        shard.unlink()
    with pytest.raises(WeightsError, match=f"^{re.escape(str(folder))}: no \\*\\.safetensors file"):
        weights.load(folder)


def test_the_simulator_serves_a_loaded_folder_under_the_config_name(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", {"_name_or_path": "acme/tiny"})
    sim = Sim("--model", str(folder), "--load-rate-mib-s", "64")
    try:
        models = sim.get("/v1/models").json()["data"]
        assert [(m["id"], m["root"]) for m in models] == [("acme/tiny", str(folder))]
    finally:
        sim.stop()


def test_the_simulator_refuses_to_start_on_a_corrupt_folder(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    path = _corrupt(folder, "model-00001-of-00002.safetensors", struct.pack("<Q", 99) + b"{}")
    result = subprocess.run(
        [sys.executable, "-m", "modelplane_enginesim", "--host", "127.0.0.1", "--port", "0",
         "--model", str(folder)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot load the model: {path}: header length 99 does not fit" in result.stderr
    assert "listening" not in result.stderr
