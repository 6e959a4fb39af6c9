"""The simulated engine: a concurrency limit, a latency model and the metrics they produce.

Guarantees: at most `max_concurrency` jobs generate at once, the others wait in
arrival order and count as waiting; a job's first token is due `ttft` plus
`prefill_s_per_token` per uncached prompt token after it starts generating
(`tpot` when its prefill was done remotely), each further
token `tpot` after the previous one; `running` and `waiting` are exact at every
await point; a job that ends early (client gone, server stopping) frees its slot
and counts as finished with reason `abort`. No HTTP here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from modelplane_enginesim.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Job:
    """One request: `lengths[i]` tokens for choice i, each finishing with `finish[i]`."""

    prompt_tokens: int
    lengths: tuple[int, ...]
    finish: tuple[str, ...]
    arrived: float
    remote_prefill: bool = False
    uncached_tokens: int = 0
    """Prompt tokens the prefix cache did not hold: the prefill computes these."""

    @property
    def steps(self) -> int:
        return max(self.lengths, default=0)


class Engine:
    def __init__(
        self,
        metrics: Metrics,
        max_concurrency: int,
        ttft_s: float,
        tpot_s: float,
        prefill_s_per_token: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.ttft = ttft_s
        self.tpot = tpot_s
        self.prefill_s_per_token = prefill_s_per_token
        self.clock = clock
        self.running = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(max_concurrency)

    def now(self) -> float:
        return self.clock()

    async def complete(self, job: Job) -> None:
        """Run `job` to its end (one sleep for the whole answer)."""
        async for _ in self.tokens(job, paced=False):
            pass

    async def tokens(self, job: Job, paced: bool = True) -> AsyncGenerator[int, None]:
        """Yield each step's index when its tokens are due; close it to abort the job."""
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        finished = False
        try:
            start = self.clock()
            prefill = self.ttft + self.prefill_s_per_token * job.uncached_tokens
            first_due = start + (self.tpot if job.remote_prefill else prefill)
            steps = job.steps
            if not paced and steps:
                await self._sleep_until(first_due + (steps - 1) * self.tpot)
            for step in range(steps):
                due = first_due + step * self.tpot
                if paced:
                    await self._sleep_until(due)
                self._account(job, step, due)
                yield step
            finished = True
        finally:
            self.running -= 1
            self._slots.release()
            self._finish(job, finished)

    async def _sleep_until(self, due: float) -> None:
        delay = due - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)

    def _account(self, job: Job, step: int, due: float) -> None:
        metrics = self.metrics
        if step == 0:
            metrics.prompt_tokens += job.prompt_tokens
            metrics.ttft.observe(max(0.0, due - job.arrived))
        else:
            metrics.tpot.observe(self.tpot)
        metrics.generation_tokens += sum(1 for n in job.lengths if n > step)

    def _finish(self, job: Job, finished: bool) -> None:
        self.metrics.e2e.observe(max(0.0, self.clock() - job.arrived))
        if finished:
            for reason in job.finish:
                self.metrics.finish(reason)
        else:
            self.metrics.finish("abort", len(job.lengths))
