"""The replica's decode load, as the scaler reads it: `GET /modelplane/load` (pure).

A P/D replica's address leads to the router, and the router passes `/metrics` to
one decode pod, so a scraper of `/metrics` sees one engine of several. The
router knows every decode pod, so it answers the reserved path
`PD_ROUTER_LOAD_PATH` (`/modelplane/load`, never passed to an engine) itself:

- `vllm:num_requests_running` and `vllm:num_requests_waiting`, each summed over
  the decode pods: a pod's own figures from the router's last scrape of it
  (`pd_router.scrape`, every `--scrape-interval`), and, where the router has
  more requests in flight to the pod than that figure counts (running plus
  waiting: the figure predates them), the difference as running; a pod
  without a figure (its last scrape failed, or it has not been scraped yet)
  counts the router's requests in flight to it as running. So the sum is never
  below what the router has sent and not yet seen answered, and counts what
  the engines queue from elsewhere (another router worker) as they report it;
- `modelplane_pd_router_load_pods{figure}`: how many pods each way counted
  (`engine` or `router`).

The engines' metric names are kept so that a scraper of engines
(endpoint-manager's `scalermetrics.parse_engine_metrics`) reads the page
unchanged. Requests still in their prefill (not yet at a decode pod) are not
counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pd_router.leastload import EngineLoad


@dataclass(frozen=True, slots=True)
class DecodeLoad:
    running: float = 0.0
    waiting: float = 0.0
    engine_pods: int = 0
    """Pods counted by what their engine reported."""
    router_pods: int = 0
    """Pods counted by the router's in-flight requests (no fresh engine figure)."""


def decode_load(
    pods: Sequence[str], in_flight: Mapping[str, int], reported: Mapping[str, EngineLoad]
) -> DecodeLoad:
    """The sum over `pods` (see the module docstring)."""
    running = waiting = 0.0
    engine_pods = router_pods = 0
    for pod in pods:
        figure = reported.get(pod)
        if figure is None:
            running += in_flight.get(pod, 0)
            router_pods += 1
        else:
            unseen = in_flight.get(pod, 0) - figure.running - figure.waiting
            running += figure.running + max(0.0, unseen)
            waiting += figure.waiting
            engine_pods += 1
    return DecodeLoad(running, waiting, engine_pods, router_pods)


def exposition(load: DecodeLoad) -> bytes:
    """`load` as Prometheus text (format 0.0.4)."""
    return (
        "# HELP vllm:num_requests_running Requests running, summed over the decode pods.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running {load.running!r}\n"
        "# HELP vllm:num_requests_waiting Requests waiting, summed over the decode pods.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting {load.waiting!r}\n"
        "# HELP modelplane_pd_router_load_pods Decode pods summed, by whose figure counted.\n"
        "# TYPE modelplane_pd_router_load_pods gauge\n"
        f'modelplane_pd_router_load_pods{{figure="engine"}} {load.engine_pods}\n'
        f'modelplane_pd_router_load_pods{{figure="router"}} {load.router_pods}\n'
    ).encode()
