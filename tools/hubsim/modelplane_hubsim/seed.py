"""Writes repositories into a hub directory: a synthetic model, a gated repository, a branch.

For tests, benchmarks and demos. A synthetic model is a `config.json` and safetensors
shards (a valid 8-byte header length, JSON header and tensor data) of pseudo-random bytes
from a seed, so the same call writes the same bytes and so the same commit.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from modelplane_hubsim.repos import HUB_CONFIG


def safetensors_file(name: str, size: int, rng: random.Random) -> bytes:
    """One tensor `name` of uint8 filling about `size` bytes, in the safetensors format."""
    header = json.dumps({name: {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}})
    room = max(0, size - 8 - len(header) - 64)
    header = json.dumps({name: {"dtype": "U8", "shape": [room], "data_offsets": [0, room]}})
    encoded = header.encode().ljust((len(header) + 7) // 8 * 8)
    return struct.pack("<Q", len(encoded)) + encoded + rng.randbytes(room)


def write_revision(root: Path, repo_id: str, revision: str, files: dict[str, bytes]) -> Path:
    """Writes `files` as the folder of `revision` (replacing what was there)."""
    folder = root / repo_id / revision
    folder.mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def synthetic_model(shards: int, shard_bytes: int, seed: int = 0) -> dict[str, bytes]:
    """A model's files: `config.json`, `shards` safetensors files and a small tokenizer file."""
    rng = random.Random(seed)
    files = {
        "config.json": json.dumps(
            {"architectures": ["SyntheticForCausalLM"], "model_type": "synthetic", "seed": seed},
            indent=2,
        ).encode(),
        "tokenizer.json": json.dumps({"version": "1.0", "seed": seed}).encode(),
    }
    for index in range(shards):
        name = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        files[name] = safetensors_file(f"layer.{index}.weight", shard_bytes, rng)
    return files


def configure(
    root: Path,
    repo_id: str,
    *,
    gated: bool = False,
    tokens: tuple[str, ...] = (),
    branches: dict[str, str] | None = None,
    throttle_mib_s: float | None = None,
) -> None:
    """Writes the repository's `.hub.json` (`throttle_mib_s`: its bodies' cap, MiB/s)."""
    config: dict[str, object] = {"gated": gated, "tokens": list(tokens), "branches": branches or {}}
    if throttle_mib_s is not None:
        config["throttleMiBs"] = throttle_mib_s
    (root / repo_id).mkdir(parents=True, exist_ok=True)
    (root / repo_id / HUB_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
