"""`modelplane up --tour`: the documentation's getting-started tour, walked on the local fleet.

It brings up the control cluster, installs the control plane as a platform team
would (`controlplane`: the image of this checkout pushed to the fleet registry,
the Helm chart installed with it, each service two pods with one leading), then
applies the repository's `examples/tour/`
manifests in the tour's order, waiting at each step for what a person would
wait for and printing it:

1. the InferenceGateway `default` and its address;
2. the L4 class and the `us-east` cluster (the harness starts the cluster's
   simulated nodes, then the manifest registers it), until it is Ready;
3. `qwen-demo` and the ModelService `ml-team/qwen`, until a chat completion
   through the service's address answers; the reply is printed;
4. the A100 class and the `us-west` and `eu-central` clusters, added while
   `qwen-demo` keeps running where it is (checked);
5. `qwen-west`, pinned to us-west;
6. the ModelService over both deployments, until requests reach both regions.

It ends with the service address and commands to paste. Every request goes only
to addresses inside the fleet's own network namespace.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from modelplane.cli import TOUR_STATE

from modelplane_localfleet import controlplane, fleetfile
from modelplane_localfleet.cluster import Cluster
from modelplane_localfleet.fleet import Fleet, FleetError
from modelplane_localfleet.layout import CONTROL
from modelplane_localfleet.netns import require_root
from modelplane_localfleet.polling import poll

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tour"
NAMESPACE = "ml-team"
SERVICE = "qwen"
T = TypeVar("T")
Say = Callable[[str], None]
Json = dict[str, Any]


class TourError(FleetError):
    """A step did not reach its goal in time; the message says which and what was seen."""


def wait(what: str, check: Callable[[], T | None], timeout_s: float = 180) -> T:
    try:
        return poll(what, check, timeout_s, every_s=0.5)
    except TimeoutError as error:
        raise TourError(str(error)) from None


def _seconds(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _kept(value: T, keep: Callable[[T], bool]) -> T | None:
    return value if keep(value) else None


def _get(control: Cluster, *args: str) -> Json:
    done = control.kubectl("get", *args, "-o", "json", check=False)
    if done.returncode != 0:
        return {}
    found: Json = json.loads(done.stdout)
    return found


def _condition(obj: Json, kind: str) -> str:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return str(entry.get("status"))
    return ""


def _replicas(control: Cluster, deployment: str) -> dict[str, Json]:
    listing = _get(control, "modelreplicas", "-n", NAMESPACE)
    return {
        r["metadata"]["name"]: r
        for r in listing.get("items", [])
        if r["spec"].get("deploymentName") == deployment
    }


def chat(address: str, prompt: str, timeout_s: float = 10) -> tuple[int, str, str]:
    """POST a chat completion to the service; (status, reply text, serving pod)."""
    body = {"model": "qwen", "messages": [{"role": "user", "content": prompt}], "max_tokens": 24}
    request = urllib.request.Request(
        f"{address}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            data = json.loads(reply.read())
            pod = reply.headers.get("X-Modelplane-Pod", "")
            return reply.status, str(data["choices"][0]["message"]["content"]), pod
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")[:200], ""
    except OSError as error:
        return 0, str(error), ""


class Tour:
    def __init__(self, fleet: Fleet, examples: Path = EXAMPLES, say: Say = print) -> None:
        self.fleet = fleet
        self.examples = examples
        self.say = say
        self.step_no = 0
        self.timings: dict[str, float] = {}

    def step(self, title: str) -> None:
        self.step_no += 1
        self.say(f"\n[{self.step_no}] {title}")

    def apply(self, name: str) -> None:
        path = self.examples / name
        self.say(f"    kubectl apply -f {path.relative_to(self.examples.parents[1])}")
        self.control.kubectl("apply", "-f", str(path))

    def add_clusters(self, names: Sequence[str], files: Sequence[str]) -> None:
        entries = {e.name: e for e in fleetfile.read([self.examples / f for f in files])}
        for name in names:
            self.say(f"    (local fleet) starting cluster {name} with its simulated GPU nodes")
            self.fleet.add(entries[name])

    def wait_cluster(self, name: str) -> None:
        found = wait(
            f"InferenceCluster {name} Ready",
            lambda: _kept(
                _get(self.control, "inferencecluster", name),
                lambda c: _condition(c, "Ready") == "True",
            ),
        )
        pools = ", ".join(
            f"{p.get('name')} ({p.get('nodes', 0)} nodes)"
            for p in (found.get("status") or {}).get("pools") or []
        )
        self.say(
            f"    {name}: Ready, gateway {found['status'].get('gatewayAddress')}, pools {pools}"
        )

    @property
    def control(self) -> Cluster:
        return self.fleet.cluster(CONTROL)

    def run(self) -> str:
        began = time.monotonic()
        self.step("Control plane: the control cluster, then the chart charts/modelplane")
        require_root("the local fleet")  # before minutes of building, not after
        controlplane.prepare(self.fleet.state, self.fleet.cache, self.say)
        took = self.fleet.up([])
        self.say(f"    control cluster up in {took:.0f}s")
        installed = controlplane.install(self.fleet, self.say)
        self.say(
            f"    release {installed.release} in {installed.namespace}: cluster-provisioner,"
            " fleet-scheduler, endpoint-manager, gateway-config, cache-hydrator (two pods each,"
            " one leading)"
        )

        self.step("The front door: InferenceGateway default")
        self.apply("01-inference-gateway.yaml")
        gateway = wait(
            "InferenceGateway default to have an address",
            lambda: (_get(self.control, "inferencegateway", "default").get("status") or {}).get(
                "address"
            ),
        )
        self.say(f"    address {gateway}")

        self.step("First GPU capacity: an L4 class and the cluster us-east")
        self.add_clusters(["us-east"], ["02-platform-us-east.yaml"])
        self.apply("02-platform-us-east.yaml")
        self.wait_cluster("us-east")

        self.step("Deploy qwen-demo and expose it as the ModelService ml-team/qwen")
        applied = time.monotonic()
        self.apply("03-qwen-demo.yaml")
        demo = wait("a qwen-demo replica", lambda: _replicas(self.control, "qwen-demo"))
        (demo_name, demo_replica), *_ = demo.items()
        self.say(f"    replica {demo_name} placed on {demo_replica['spec']['clusterName']}")
        address: str = wait(
            "ModelService ml-team/qwen to have an address",
            lambda: (_get(self.control, "ms", "-n", NAMESPACE, SERVICE).get("status") or {}).get(
                "address"
            ),
        )
        code, text, pod = wait(
            "a chat completion through the service",
            lambda: _kept(chat(address, "Say hello"), lambda r: r[0] == 200),
            timeout_s=240,
        )
        self.timings["first_answer_s"] = time.monotonic() - applied
        self.say(f"    POST {address}/v1/chat/completions -> {code} from pod {pod}")
        self.say(
            f"    first answer {self.timings['first_answer_s']:.1f}s after kubectl apply"
            f" (the engine pod itself: {self.engine_start(pod):.1f}s from created to Ready)"
        )
        self.say(f"    reply: {text!r}")

        self.step("Grow the platform: an A100 class, clusters us-west and eu-central")
        files = ["02-platform-us-east.yaml", "04-platform-more-regions.yaml"]
        self.add_clusters(["us-west", "eu-central"], files)
        self.apply("04-platform-more-regions.yaml")
        for name in ("us-west", "eu-central"):
            self.wait_cluster(name)
        now = _replicas(self.control, "qwen-demo")
        if (
            now.get(demo_name, {}).get("spec", {}).get("clusterName")
            != demo_replica["spec"]["clusterName"]
        ):
            raise TourError(f"qwen-demo moved: {sorted(now)}")
        self.say(
            f"    qwen-demo still runs as {demo_name} on {demo_replica['spec']['clusterName']}"
        )

        self.step("A second deployment, qwen-west, pinned to us-west")
        self.apply("05-qwen-west.yaml")
        west = wait(
            "a Ready qwen-west replica",
            lambda: {
                n: r
                for n, r in _replicas(self.control, "qwen-west").items()
                if _condition(r, "Ready") == "True"
            },
            timeout_s=240,
        )
        for name, replica in west.items():
            self.say(f"    replica {name} Ready on {replica['spec']['clusterName']}")

        self.step("One ModelService over both deployments")
        self.apply("06-model-service-both.yaml")
        wanted = {r["spec"]["clusterName"] for r in [*demo.values(), *west.values()]}

        def both_regions() -> Counter[str] | None:
            seen: Counter[str] = Counter()
            for _ in range(20):
                code, _, pod = chat(address, "Which region are you in?")
                if code == 200:
                    seen[self.cluster_of(pod)] += 1
            return seen if set(seen) >= wanted else None

        spread = wait("requests served from both regions", both_regions, timeout_s=120)
        self.say("    20 requests: " + ", ".join(f"{c} {n}" for c, n in sorted(spread.items())))
        self.say(f"\nTour done in {time.monotonic() - began:.0f}s.")
        return address

    def engine_start(self, pod: str) -> float:
        """Seconds from the pod's creation to its Ready condition (`namespace/name`)."""
        namespace, _, name = pod.partition("/")
        found = _get(self.fleet.cluster(self.cluster_of(pod)), "pod", "-n", namespace, name)
        ready = next(
            (c for c in found.get("status", {}).get("conditions", []) if c["type"] == "Ready"),
            None,
        )
        if not ready:
            return float("nan")
        created = _seconds(found["metadata"]["creationTimestamp"])
        took = _seconds(ready["lastTransitionTime"]) - created
        self.timings["engine_ready_s"] = took
        return took

    def cluster_of(self, pod: str) -> str:
        """The cluster whose pods include `pod` (`namespace/name`)."""
        namespace, _, name = pod.partition("/")
        for cluster in self.fleet.clusters():
            if cluster.name != CONTROL and _get(cluster, "pod", "-n", namespace, name):
                return cluster.name
        return "?"


def first_steps(state: Path, gateway: str) -> list[str]:
    """What to do after `modelplane up`: apply manifests, add clusters, where the gateway is."""
    modelplane = Path(sys.executable).parent / "modelplane"
    run = f"{modelplane} localfleet exec --state {state} --"
    return [
        f"The front door (gateway) answers at {gateway} once an InferenceGateway exists:",
        f"  {run} kubectl apply -f {EXAMPLES / '01-inference-gateway.yaml'}",
        "Add GPU capacity: start a cluster's simulated nodes, then register it:",
        f"  {modelplane} localfleet add us-east -f {EXAMPLES / '02-platform-us-east.yaml'}"
        f" --state {state}",
        f"  {run} kubectl apply -f {EXAMPLES / '02-platform-us-east.yaml'}",
        "Apply your manifests (ModelDeployment, ModelService, ...) with kubectl inside the fleet:",
        f"  {run} kubectl apply -f {EXAMPLES / '03-qwen-demo.yaml'}",
        f"  {run} kubectl get md,ms,modelreplicas -A",
        "Why a deployment's replicas are where they are (asks the running fleet-scheduler):",
        f"  {'' if state == Path(TOUR_STATE) else run + ' '}{modelplane} explain"
        f" md/qwen-demo -n {NAMESPACE}",
        "Upgrade the control plane after a code change (rebuilds the image, helm upgrade):",
        f"  {modelplane} up --state {state}",
        "Tear everything down:",
        f"  {modelplane} down --state {state}",
    ]


def next_steps(state: Path, address: str) -> list[str]:
    """Commands a person can paste next (`modelplane` from the environment that ran the tour)."""
    modelplane = Path(sys.executable).parent / "modelplane"
    run = f"{modelplane} localfleet exec --state {state} --"
    body = '{"model": "qwen", "messages": [{"role": "user", "content": "Hello"}]}'
    return [
        f"The service: {address}",
        "",
        "Send a request:",
        f"  {run} curl -s {address}/v1/chat/completions -H 'Content-Type: application/json'"
        f" -d '{body}'",
        "Scale qwen-demo to three replicas (and back):",
        f"  {run} kubectl scale -n {NAMESPACE} md/qwen-demo --replicas=3",
        f"  {run} kubectl get modelreplicas,modelendpoints -n {NAMESPACE}",
        "Why each replica is where it is (asks the running fleet-scheduler):",
        f"  {'' if state == Path(TOUR_STATE) else run + ' '}{modelplane} explain"
        f" md/qwen-demo -n {NAMESPACE}",
        "Add a deployment:",
        f"  {run} kubectl apply -f {EXAMPLES / '05-qwen-west.yaml'}",
        "Delete a cluster (its replicas drain, then move to clusters that fit):",
        f"  {run} kubectl delete inferencecluster eu-central",
        "Tear everything down:",
        f"  {modelplane} down --state {state}",
    ]
