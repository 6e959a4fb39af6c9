"""Prefill/decode disaggregation, simulated: `kv_transfer_params` and the KV block store (pure).

vLLM's NIXL connector hands a prefilled request from a producer engine to a
consumer engine: the producer answers a `do_remote_decode` request with
`kv_transfer_params` naming its engine id, the blocks holding the prompt's KV
cache and its side channel; the consumer, given those params with
`do_remote_prefill`, pulls the blocks before decoding. Here a "block" is a
record of the prompt (tokens, request id, producer pod).

Guarantees: `parse_params` names the field it rejects; a record can be taken
once, only by its engine id and only within `ttl_s` of being stored; expired
records are dropped as new ones arrive, so the store stays small.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelplane_enginesim.config import Identity
from modelplane_enginesim.inference import ApiError

BLOCK_SIZE = 16
TTL_S = 120.0
FIELD = "kv_transfer_params"


@dataclass(frozen=True, slots=True)
class KvRequest:
    """What a request's `kv_transfer_params` ask of this engine."""

    mode: Literal["prefill", "decode"]
    engine_id: str = ""
    block_ids: tuple[int, ...] = ()
    host: str = ""
    port: int = 0

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_params(value: object) -> KvRequest | None:
    """None when the request asks for no transfer (absent, null, or both flags false)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ApiError(400, f"{FIELD}: must be an object", FIELD)
    decode, prefill = value.get("do_remote_decode"), value.get("do_remote_prefill")
    for name, flag in (("do_remote_decode", decode), ("do_remote_prefill", prefill)):
        if flag is not None and not isinstance(flag, bool):
            raise ApiError(400, f"{FIELD}.{name}: must be true or false", FIELD)
    if decode and prefill:
        raise ApiError(
            400, f"{FIELD}: do_remote_decode and do_remote_prefill cannot both be true", FIELD
        )
    if decode:
        return KvRequest("prefill")
    if not prefill:
        return None
    engine_id = value.get("remote_engine_id")
    if not isinstance(engine_id, str) or not engine_id:
        raise ApiError(400, f"{FIELD}.remote_engine_id: must be a non-empty string", FIELD)
    blocks = value.get("remote_block_ids")
    if not isinstance(blocks, list) or not blocks or not all(_is_int(b) for b in blocks):
        raise ApiError(400, f"{FIELD}.remote_block_ids: must be a non-empty list of ints", FIELD)
    host = value.get("remote_host")
    if not isinstance(host, str) or not host:
        raise ApiError(400, f"{FIELD}.remote_host: must be a non-empty string", FIELD)
    raw_port = value.get("remote_port")
    port = int(str(raw_port)) if _is_int(raw_port) or str(raw_port).isdigit() else 0
    if not 0 < port < 65536:
        raise ApiError(400, f"{FIELD}.remote_port: must be a port number", FIELD)
    return KvRequest("decode", engine_id, tuple(blocks), host, port)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def response_params(
    engine_id: str, block_ids: tuple[int, ...], host: str, port: int, request_id: str
) -> dict[str, Any]:
    """The `kv_transfer_params` a producer returns, for the decode request to carry."""
    return {
        "do_remote_prefill": True,
        "do_remote_decode": False,
        "remote_engine_id": engine_id,
        "remote_block_ids": list(block_ids),
        "remote_host": host,
        "remote_port": port,
        "remote_request_id": request_id,
        "tp_size": 1,
    }


@dataclass(frozen=True, slots=True)
class Record:
    request_id: str
    prompt_tokens: int
    block_ids: tuple[int, ...]
    stored_at: float


class BlockStore:
    def __init__(
        self,
        engine_id: str,
        pod: Identity,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine_id = engine_id
        self.pod = pod
        self.ttl_s = ttl_s
        self.clock = clock
        self._next = 1
        self._records: dict[int, Record] = {}  # first block id -> record, oldest first
        self._owner: dict[int, int] = {}  # block id -> first block id of its record

    def __len__(self) -> int:
        return len(self._records)

    def put(self, request_id: str, prompt_tokens: int) -> tuple[int, ...]:
        self.expire()
        count = max(1, -(-prompt_tokens // BLOCK_SIZE))
        ids = tuple(range(self._next, self._next + count))
        self._next += count
        self._records[ids[0]] = Record(request_id, prompt_tokens, ids, self.clock())
        for block in ids:
            self._owner[block] = ids[0]
        return ids

    def take(self, engine_id: str, block_ids: tuple[int, ...]) -> Record:
        """The record holding all of `block_ids`, removed; ValueError saying why not."""
        self.expire()
        if engine_id != self.engine_id:
            raise ValueError(f"unknown engine id {engine_id} (this engine is {self.engine_id})")
        firsts = {self._owner.get(b) for b in block_ids}
        if not block_ids or len(firsts) != 1 or None in firsts:
            raise ValueError(f"unknown or expired blocks {list(block_ids)}")
        record = self._records.pop(firsts.pop() or 0)
        for block in record.block_ids:
            self._owner.pop(block, None)
        return record

    def expire(self) -> None:
        limit = self.clock() - self.ttl_s
        while self._records:
            first, record = next(iter(self._records.items()))
            if record.stored_at > limit:
                break
            del self._records[first]
            for block in record.block_ids:
                self._owner.pop(block, None)
