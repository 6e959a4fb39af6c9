"""A figure for issue 15: apply-to-first-answer of a gang whose ModelCache is already Ready.

The services, the recipe and the repository are e2e/test_cache_gang.py's (imported, so
the two modules measure and check the same gang). The cache is staged first and waited
for; then, three times, the gang (the qwen3-coder recipe at the test fleet's sizes, one
replica on east) is applied and timed until the official `openai` SDK gets an answer
through the ModelService's front-door address, then deleted and waited for until its
pods are gone. From each time it subtracts the engine's own weight loading (the
simulator's `loaded /mnt/models: ... in S s` line, the slower of the two members, which
load at once); the simulator's process start (its imports) stays in. Prints each run and
the medians (`pytest -s`); asserts only that each gang answered from the cache's bytes.
"""

from __future__ import annotations

import re
import statistics
import time

import openai
import pytest
from modelplane_localfleet.fleet import Fleet

from e2e.kube import apply, condition, get, items, wait_for
from e2e.modelcache import token_secret
from e2e.test_cache_gang import (
    NAME,
    TOKEN,
    address_of,
    answered,
    coder,
    gang,
    model_cache,
    pod_log,
    recipe,
    services,  # noqa: F401
    staged,  # noqa: F401
)

# the imported fixtures: test_cache_gang's services (the same processes and ports) and its
# repository in the fleet's hub
pytestmark = pytest.mark.usefixtures("local_fleet", "services", "staged")
LOADED = re.compile(r"^loaded /mnt/models: .* in ([0-9.]+)s; serving ", re.MULTILINE)
RUNS = 3


def test_a_gang_on_a_ready_cache_answers_soon_after_apply(
    local_fleet: Fleet, namespace: str
) -> None:
    control, east = local_fleet.cluster("control"), local_fleet.cluster("east")
    apply(control, token_secret(namespace, TOKEN), model_cache(namespace))

    def staged_cache() -> bool:
        return (
            condition(get(control, "modelcache", "-n", namespace, NAME), "Ready").get("status")
            == "True"
        )

    wait_for("the cache Ready", staged_cache, 240)
    apply(control, recipe("model-service.yaml", namespace))
    totals, loads = [], []
    for run in range(RUNS):
        began = time.monotonic()
        apply(control, coder(namespace))
        address = str(wait_for("the address", lambda: address_of(control, namespace), 120))
        client = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0)
        wait_for("a first answer", lambda: answered(client), 300)  # noqa: B023 (used at once)
        total = time.monotonic() - began
        pods = gang(east, namespace)
        assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
        seconds = [LOADED.search(pod_log(local_fleet, p, "engine")) for p in pods]
        assert all(seconds), "an engine without its `loaded /mnt/models` line"
        load = max(float(found.group(1)) for found in seconds if found)
        totals.append(total)
        loads.append(load)
        print(
            f"figure run {run + 1}: first answer {total:.1f}s after apply, engine weight load "
            f"{load:.2f}s, without it {total - load:.1f}s"
        )
        control.kubectl("delete", "modeldeployment", "-n", namespace, NAME, "--wait=false")
        wait_for(
            "the gang gone",
            lambda: not items(east, "pods", "-n", namespace, "-l", f"modelplane.ai/engine={NAME}")
            and not items(control, "modelreplicas", "-n", namespace),
            240,
        )
    without = [t - load for t, load in zip(totals, loads, strict=True)]
    print(
        f"figure: apply-to-first-answer of a gang on a Ready cache, median of {RUNS}: "
        f"{statistics.median(totals):.1f}s, engine weight load excluded "
        f"{statistics.median(without):.1f}s"
    )
