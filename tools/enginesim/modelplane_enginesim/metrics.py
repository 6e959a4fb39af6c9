"""vLLM's Prometheus metrics, kept in memory and written by hand (pure).

Guarantees: `Metrics.render` returns text exposition format 0.0.4 with a HELP
and a TYPE line before each family, every sample labelled
`model_name="<first served name>"`; counters only grow; histogram buckets are
cumulative and end with `le="+Inf"` equal to `_count`. The names are vLLM's,
so dashboards, autoscalers and routers that read vLLM read the simulator too.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
TPOT_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
    0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
E2E_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
    50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
FINISHED_REASONS = ("stop", "length", "abort")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def number(value: float) -> str:
    """A sample value or bucket bound the way Prometheus clients write it."""
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.help = help_text
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        if times <= 0:
            return
        self.counts[bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times

    def render(self, labels: str) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            lines.append(f'{self.name}_bucket{{{labels},le="{number(bound)}"}} {number(running)}')
        lines.append(f"{self.name}_sum{{{labels}}} {number(self.sum)}")
        lines.append(f"{self.name}_count{{{labels}}} {number(self.count)}")
        return lines


class Metrics:
    """The engine's counters and histograms; gauges are passed in when rendering."""

    def __init__(self, model_name: str, max_concurrency: int) -> None:
        self.labels = f'model_name="{escape(model_name)}"'
        self.max_concurrency = max_concurrency
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.prefix_cache = (0, 0)  # (queries, hits) in tokens
        self.finished: dict[str, int] = dict.fromkeys(FINISHED_REASONS, 0)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            TTFT_BUCKETS,
        )
        self.tpot = Histogram(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            TPOT_BUCKETS,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            E2E_BUCKETS,
        )

    def finish(self, reason: str, times: int = 1) -> None:
        self.finished[reason] = self.finished.get(reason, 0) + times

    def render(self, running: int, waiting: int) -> str:
        usage = min(1.0, running / self.max_concurrency) if self.max_concurrency else 0.0
        lines: list[str] = []
        gauges = (
            (
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                running,
            ),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage),
            ("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", usage),
        )
        for name, help_text, value in gauges:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines.append(f"{name}{{{self.labels}}} {number(value)}")
        counters = (
            ("vllm:prompt_tokens_total", "Number of prefill tokens processed.", self.prompt_tokens),
            (
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
                self.generation_tokens,
            ),
            (
                "vllm:prefix_cache_queries_total",
                "Prefix cache queries, in terms of number of queried tokens.",
                self.prefix_cache[0],
            ),
            (
                "vllm:prefix_cache_hits_total",
                "Prefix cache hits, in terms of number of cached tokens.",
                self.prefix_cache[1],
            ),
        )
        for name, help_text, total in counters:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            lines.append(f"{name}{{{self.labels}}} {number(total)}")
        name = "vllm:request_success_total"
        lines += [
            f"# HELP {name} Count of successfully processed requests.",
            f"# TYPE {name} counter",
        ]
        for reason, total in self.finished.items():
            lines.append(
                f'{name}{{finished_reason="{escape(reason)}",{self.labels}}} {number(total)}'
            )
        for histogram in (self.ttft, self.tpot, self.e2e):
            lines += histogram.render(self.labels)
        return "\n".join(lines) + "\n"
