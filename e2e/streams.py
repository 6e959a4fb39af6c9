"""Many streamed chat completions at once, sent as the OpenAI SDK sends them.

`stream_many` posts `count` streamed chats (HTTP/1.1, a JSON body with a
Content-Length: the shape that exposed golang/go#40747 on a relayed HTTP/1.1
stream), `concurrency` at a time, and returns per stream its HTTP status, the
pod that answered (`X-Modelplane-Pod`) and whether it ended with
`data: [DONE]` (False for a stream that broke off or ended early).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx

DONE = "data: [DONE]"


@dataclass(frozen=True)
class Streamed:
    status: int
    pod: str
    whole: bool
    error: str = ""


async def _stream_many(
    url: str, body: dict[str, object], count: int, concurrency: int
) -> list[Streamed]:
    gate = asyncio.Semaphore(concurrency)
    payload = json.dumps({**body, "stream": True}).encode()
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as client:

        async def one() -> Streamed:
            async with gate:
                status, pod, lines = 0, "", []
                try:
                    async with client.stream("POST", url, content=payload, headers=headers) as r:
                        status, pod = r.status_code, r.headers.get("x-modelplane-pod", "")
                        lines = [line async for line in r.aiter_lines() if line]
                except httpx.HTTPError as error:
                    return Streamed(status, pod, False, f"{type(error).__name__}: {error}")
                return Streamed(status, pod, bool(lines) and lines[-1] == DONE)

        return list(await asyncio.gather(*(one() for _ in range(count))))


def stream_many(url: str, body: dict[str, object], count: int, concurrency: int) -> list[Streamed]:
    """`count` streamed chats to `url`, `concurrency` at a time."""
    return asyncio.run(_stream_many(url, body, count, concurrency))
