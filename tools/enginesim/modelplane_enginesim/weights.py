"""Loading a model from a folder, as an engine does before it serves: `config.json` and
every safetensors file, read whole.

`is_path(model)` tells a folder (`/mnt/models`, `./m`, or any existing folder) from a
model name (`Qwen/Qwen3-0.6B`, served as today without reading anything).
`load(folder, rate)` reads `config.json` (a JSON object) and each `*.safetensors` file at
the top of the folder (sorted; hidden folders such as a hydration job's `.modelplane/`
are not looked at): the 8-byte little-endian header length, the JSON header, and for
every tensor its `data_offsets` inside the data that follows the header (and, for a
known dtype, the span its shape needs); then every byte of the file, at most `rate`
bytes per second when a rate is given, so loading takes time proportional to the
model's size. Anything missing or corrupt is a `WeightsError` naming the file (and the
tensor). The name served is the config's `_name_or_path` when it has one, else the
folder's path, as vLLM names a model loaded from a folder.
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
MAX_HEADER = 100 << 20  # as the safetensors library: a larger header is not a header
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


class WeightsError(Exception):
    """The folder does not hold a loadable model; the message names the file."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What was loaded: the name to serve, the files, their tensors and bytes, the time."""

    name: str
    folder: Path
    files: tuple[str, ...]
    tensors: int
    bytes_read: int
    seconds: float


def is_path(model: str) -> bool:
    return model.startswith(("/", "./", "../")) or Path(model).is_dir()


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{path}: no config.json in the model folder") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise WeightsError(f"{path}: not a readable JSON file: {error}") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: not a JSON object")
    return config


def check_header(path: Path, size: int, header_length: int, header: bytes) -> int:
    """The number of tensors the header describes; `WeightsError` when it is corrupt."""
    if header_length > min(size - 8, MAX_HEADER):
        raise WeightsError(
            f"{path}: header length {header_length} does not fit in the file ({size} bytes)"
        )
    try:
        entries = json.loads(header)
    except (UnicodeDecodeError, ValueError) as error:
        raise WeightsError(f"{path}: the header is not JSON: {error}") from None
    if not isinstance(entries, dict):
        raise WeightsError(f"{path}: the header is not a JSON object")
    data = size - 8 - header_length
    tensors = 0
    for name, entry in entries.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        ):
            raise WeightsError(f"{where}: data_offsets must be two integers")
        begin, end = offsets
        if not 0 <= begin <= end <= data:
            raise WeightsError(
                f"{where}: data_offsets [{begin}, {end}] lie outside the {data} data bytes"
            )
        width = DTYPE_BYTES.get(str(entry.get("dtype")))
        shape = entry.get("shape")
        if width is not None and isinstance(shape, list):
            needed = math.prod(int(d) for d in shape) * width
            if needed != end - begin:
                raise WeightsError(
                    f"{where}: shape {shape} of {entry['dtype']} needs {needed} bytes, "
                    f"data_offsets give {end - begin}"
                )
        tensors += 1
    return tensors


Sleep = Callable[[float], None]
Clock = Callable[[], float]


def _read_all(path: Path, rate: float | None, sleep: Sleep, clock: Clock) -> int:
    """Read every byte of `path` (at most `rate` bytes per second); the number read."""
    began = clock()
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            done += len(chunk)
            if rate:
                ahead = done / rate - (clock() - began)
                if ahead > 0:
                    sleep(ahead)
    return done


def read_safetensors(
    path: Path, rate: float | None, sleep: Sleep = time.sleep, clock: Clock = time.monotonic
) -> tuple[int, int]:
    """Check `path`'s header, then read it whole; (tensors, bytes read)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise WeightsError(f"{path}: {size} bytes, too short for a safetensors header")
            (header_length,) = struct.unpack("<Q", prefix)
            header = handle.read(min(header_length, MAX_HEADER))
        tensors = check_header(path, size, header_length, header)
        done = _read_all(path, rate, sleep, clock)
    except OSError as error:
        raise WeightsError(f"{path}: cannot read: {error}") from None
    if done != size:
        raise WeightsError(f"{path}: read {done} bytes of {size}: the file changed while loading")
    return tensors, done


def load(
    folder: Path,
    rate: float | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> Loaded:
    """Load the model in `folder` (see the module docstring); `rate` in bytes per second."""
    began = clock()
    if not folder.is_dir():
        raise WeightsError(f"{folder}: the model folder does not exist")
    config = read_config(folder)
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise WeightsError(f"{folder}: no *.safetensors file in the model folder")
    tensors = done = 0
    for shard in shards:
        found, read = read_safetensors(shard, rate, sleep, clock)
        tensors += found
        done += read
    name = config.get("_name_or_path")
    return Loaded(
        name if isinstance(name, str) and name else str(folder),
        folder,
        tuple(s.name for s in shards),
        tensors,
        done,
        clock() - began,
    )
