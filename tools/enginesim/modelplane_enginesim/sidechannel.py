"""The KV side channel: a producer serves its blocks over TCP, a consumer fetches them.

Protocol, one exchange per connection: the client sends one JSON line
`{"engine_id": ..., "block_ids": [...]}`; the server answers one JSON line,
`{"ok": true, "prompt_tokens": N, "request_id": ..., "pod": {...}}` or
`{"ok": false, "error": "..."}`, and closes.

Guarantees: `fetch` either returns the producer's answer or raises
`FetchError` with a short reason (connection refused, timed out, the
producer's own error) within `timeout_s`; the server never lets one bad
client hold it (each read is bounded in size and time).
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from modelplane_enginesim.kvtransfer import BlockStore
from modelplane_enginesim.logs import log

LINE_LIMIT = 1 << 20
READ_TIMEOUT_S = 5.0


class FetchError(Exception):
    pass


class SideChannel:
    def __init__(self, store: BlockStore) -> None:
        self.store = store
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(
            self._serve, host, port, reuse_address=True, limit=LINE_LIMIT
        )
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                line = await reader.readline()
            answer = self.answer(line)
            log(
                "kv_fetch_served",
                peer=peer[0] if peer else None,
                ok=answer["ok"],
                error=answer.get("error"),
            )
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            query = json.loads(line)
            engine_id = query["engine_id"]
            block_ids = tuple(int(b) for b in query["block_ids"])
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "bad query: want {engine_id, block_ids}"}
        try:
            record = self.store.take(str(engine_id), block_ids)
        except ValueError as error:
            return {"ok": False, "error": str(error)}
        return {
            "ok": True,
            "prompt_tokens": record.prompt_tokens,
            "request_id": record.request_id,
            "pod": self.store.pod.as_json(),
        }


async def fetch(
    host: str, port: int, engine_id: str, block_ids: tuple[int, ...], timeout_s: float = 2.0
) -> dict[str, Any]:
    """The producer's answer for these blocks; FetchError(reason) if there is none."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
            query = {"engine_id": engine_id, "block_ids": list(block_ids)}
            writer.write(json.dumps(query).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
    except TimeoutError:
        raise FetchError(f"timed out after {timeout_s:g}s") from None
    except ConnectionRefusedError:
        raise FetchError("connection refused") from None
    except socket.gaierror as error:
        raise FetchError(f"cannot resolve host: {error.strerror}") from None
    except OSError as error:
        raise FetchError(error.strerror or str(error)) from None
    finally:
        if writer is not None:
            writer.close()
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise FetchError("the side channel closed without a valid answer")
    if not answer.get("ok"):
        raise FetchError(str(answer.get("error") or "refused"))
    return answer
