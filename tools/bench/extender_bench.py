"""Latency of the scheduler extender's calls, as kube-scheduler makes them.

Runs `modelplane-scheduler-extender`'s HTTP app in this process on loopback with an
in-memory stand-in for its watch cache, and sends `filter` and `prioritize` calls over
one kept-alive connection, as kube-scheduler's HTTP client does (`NodeNames`,
nodeCacheCapable). The cluster: N nodes of 8 GPUs, node n holding n mod 5 allocated
2-GPU claims (0 to 8 GPUs taken: two claims a node on average), and `IN_FLIGHT` engine
pods waiting to be scheduled. Each pod is what kube-scheduler sends: endpoint-manager's
own rendering of a vLLM replica claiming 2 Hopper GPUs (`endpoint_manager.workload`),
as the Deployment's pod with the API server's defaults, and its generated,
unallocated ResourceClaim named in `status.resourceClaimStatuses` (in the cache, as the
resourceclaim controller creates it before the pod is scheduled). Prints the payload's
size and p50/p99 per verb and node count over `--calls` calls each, after a warm-up, as
wall time and as this process's CPU time (client and server together; less bent than
wall time by a loaded machine's scheduling), then the CPU time of the extender's own
answers called in process on parsed arguments ("decide": no HTTP, no JSON). With
`--gc-freeze` the objects built so far are first frozen out of the cyclic collector
(`gc.freeze()`, as the extender does once synced). A benchmark: prints, never fails on
figures.

    .venv/bin/python tools/bench/extender_bench.py [--nodes 10 100] [--calls 2000] [--gc-freeze]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import statistics
import threading
import time
from typing import Any

from endpoint_manager.workload import render
from modelplane.httpserver import HttpServer
from modelplane.wellknown import SCHEDULER_NAME
from scheduler_extender.__main__ import App
from scheduler_extender.extender import CLAIMS, CLASSES, SLICES, TEMPLATES, Extender

Json = dict[str, Any]
IN_FLIGHT = 32  # engine pods waiting for the scheduler at once
NAMESPACE = "ml"
HOPPER = 'device.attributes["gpu.nvidia.com"].architecture == "Hopper"'
WARM_UP = 200


class MemoryCache:
    """The extender's watch cache, filled once (no API server)."""

    def __init__(self, objects: dict[str, list[Json]]) -> None:
        self.objects = objects
        self.listeners: list[Any] = []
        self.synced = True

    def items(self, path: str) -> list[Json]:
        return self.objects[path]


def replica() -> Json:
    """A ModelReplica of one vLLM engine claiming two Hopper GPUs, as fleet-scheduler writes it."""
    container = {
        "name": "engine",
        "image": "vllm/vllm-openai:v0.23.0",
        "args": ["--model=Qwen/Qwen3-8B", "--served-model-name=qwen3-8b",
                 "--tensor-parallel-size=2", "--max-model-len=32768", "--port=8000"],
        "env": [{"name": "HF_HOME", "value": "/mnt/models"},
                {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
        "ports": [{"name": "http", "containerPort": 8000}],
        "resources": {"requests": {"cpu": "8", "memory": "64Gi"}},
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
    }  # fmt: skip
    request = {"name": "gpu", "count": 2, "deviceClassName": "gpu.nvidia.com",
               "selectors": [{"cel": HOPPER}]}  # fmt: skip
    shm = {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}
    member = {"role": "Standalone", "nodePoolName": "h100", "deviceRequests": [request],
              "template": {"spec": {"containers": [container], "volumes": [shm]}}}  # fmt: skip
    return {
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "ModelReplica",
        "metadata": {"name": "qwen-east-0", "namespace": NAMESPACE, "uid": "r-1",
                     "labels": {"modelplane.ai/deployment": "qwen"}},
        "spec": {"clusterName": "east", "deploymentName": "qwen", "index": 0,
                 "serving": {"mode": "Unified"},
                 "engines": [{"name": "qwen", "copies": 1, "nodePoolName": "h100", "nodeCost": 1,
                              "members": [member]}]},
    }  # fmt: skip


def rendered() -> tuple[Json, Json]:
    """endpoint-manager's pod template and claim template for `replica()`."""
    objects = render(replica(), scheduler_name=SCHEDULER_NAME).objects
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (template,) = [o for o in objects if o["kind"] == "ResourceClaimTemplate"]
    return deployment["spec"]["template"], template


def pending_pod(template: Json, claim: Json, i: int) -> Json:
    """The Deployment's i-th pod as kube-scheduler sends it: the template with the API
    server's defaults and the name of its generated claim."""
    spec = json.loads(json.dumps(template["spec"]))
    for container in spec["containers"]:
        container.update(
            terminationMessagePath="/dev/termination-log",
            terminationMessagePolicy="File",
            imagePullPolicy="IfNotPresent",
        )
        container.setdefault("volumeMounts", []).append(
            {"name": "kube-api-access", "readOnly": True,
             "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})  # fmt: skip
    spec["volumes"] = [*spec.get("volumes", ()), {"name": "kube-api-access", "projected": {
        "defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]  # fmt: skip
    spec.update(
        restartPolicy="Always", terminationGracePeriodSeconds=30, dnsPolicy="ClusterFirst",
        serviceAccountName="default", serviceAccount="default", securityContext={},
        priority=0, enableServiceLinks=True, preemptionPolicy="PreemptLowerPriority",
        tolerations=[{"key": f"node.kubernetes.io/{t}", "operator": "Exists",
                      "effect": "NoExecute", "tolerationSeconds": 300}
                     for t in ("not-ready", "unreachable")],
    )  # fmt: skip
    name = f"qwen-east-0-qwen-7d4f9c8b6-{i:05d}"
    labels = {**template["metadata"]["labels"], "pod-template-hash": "7d4f9c8b6"}
    return {
        "metadata": {
            "name": name, "generateName": "qwen-east-0-qwen-7d4f9c8b6-", "namespace": NAMESPACE,
            "uid": f"0b9d2f6e-5c1a-4f7e-9d3b-{i:012d}", "resourceVersion": str(100000 + i),
            "creationTimestamp": "2026-12-03T21:00:00Z", "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "qwen-east-0-qwen-7d4f9c8b6", "uid": "rs-1",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
        "status": {
            "phase": "Pending", "qosClass": "Burstable",
            "conditions": [{"type": "PodScheduled", "status": "False",
                            "reason": "SchedulerError", "lastTransitionTime": None}],
            "resourceClaimStatuses": [{"name": spec["resourceClaims"][0]["name"],
                                       "resourceClaimName": claim["metadata"]["name"]}],
        },
    }  # fmt: skip


def generated_claim(template: Json, i: int) -> Json:
    """The resourceclaim controller's claim for pod i: the template's spec, unallocated."""
    return {"metadata": {"name": f"qwen-east-0-qwen-7d4f9c8b6-{i:05d}-modelplane-devices-x",
                         "namespace": NAMESPACE},
            "spec": template["spec"]["spec"]}  # fmt: skip


def cluster(nodes: int) -> tuple[dict[str, list[Json]], list[Json]]:
    """The watch cache's objects for `nodes` nodes, and the pods waiting to be scheduled."""
    slices, claims = [], []
    for n in range(nodes):
        node = f"node-{n:03d}"
        slices.append({
            "metadata": {"name": f"{node}-gpu"},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": node, "pool": {"name": node},
                     "devices": [{"name": f"gpu-{i}",
                                  "attributes": {"architecture": {"string": "Hopper"}}}
                                 for i in range(8)]},
        })  # fmt: skip
        for c in range(n % 5):
            results = [{"request": "gpu", "driver": "gpu.nvidia.com", "pool": node,
                        "device": f"gpu-{2 * c + i}"} for i in range(2)]  # fmt: skip
            allocation = {"devices": {"results": results}}
            claims.append({"metadata": {"name": f"c{n}-{c}", "namespace": NAMESPACE},
                           "status": {"allocation": allocation}})  # fmt: skip
    pod_template, claim_template = rendered()
    waiting = [generated_claim(claim_template, i) for i in range(IN_FLIGHT)]
    pods = [pending_pod(pod_template, claim, i) for i, claim in enumerate(waiting)]
    device_class = {"metadata": {"name": "gpu.nvidia.com"},
                    "spec": {"selectors": [{"cel": {"expression":
                        'device.driver == "gpu.nvidia.com"'}}]}}  # fmt: skip
    objects = {SLICES: slices, CLAIMS: claims + waiting, TEMPLATES: [claim_template],
               CLASSES: [device_class]}  # fmt: skip
    return objects, pods


def serve(extender: Extender) -> int:
    ready: list[int] = []
    started = threading.Event()

    def run() -> None:
        async def main() -> None:
            server = HttpServer(App(extender).handle)
            ready.append(await server.start("127.0.0.1", 0))
            started.set()
            await asyncio.Event().wait()

        asyncio.run(main())

    threading.Thread(target=run, daemon=True).start()
    started.wait(10)
    return ready[0]


def measure(nodes: int, calls: int, freeze: bool = False) -> tuple[dict[str, list[float]], int]:
    """Timings per verb (wall and CPU), and the size of one call's body in bytes."""
    objects, pods = cluster(nodes)
    extender = Extender(MemoryCache(objects))
    port = serve(extender)
    if freeze:
        gc.freeze()
    connection = http.client.HTTPConnection("127.0.0.1", port)
    names = [s["spec"]["nodeName"] for s in objects[SLICES]]
    bodies = [json.dumps({"Pod": pod, "NodeNames": names}) for pod in pods]
    timings: dict[str, list[float]] = {
        "filter": [],
        "prioritize": [],
        "filter cpu": [],
        "prioritize cpu": [],
    }
    for i in range(calls + WARM_UP):
        body = bodies[i % len(bodies)]
        for verb in ("filter", "prioritize"):
            began, cpu = time.perf_counter(), time.process_time()
            connection.request("POST", f"/{verb}", body, {"Content-Type": "application/json"})
            reply = connection.getresponse()
            reply.read()
            took, cpu_took = time.perf_counter() - began, time.process_time() - cpu
            if i >= WARM_UP:
                timings[verb].append(took)
                timings[f"{verb} cpu"].append(cpu_took)
        extender.pending.clear()  # every call a fresh pod on the same cluster state
    timings.update(decisions(extender, [json.loads(body) for body in bodies], calls))
    return timings, len(bodies[0])


def decisions(extender: Extender, calls_args: list[Json], calls: int) -> dict[str, list[float]]:
    """CPU time of the extender's own answers, called in process on parsed arguments (no
    HTTP, no JSON): what the change of its inventory code moves."""
    timings: dict[str, list[float]] = {"filter decide": [], "prioritize decide": []}
    for i in range(calls + WARM_UP):
        args = calls_args[i % len(calls_args)]
        began = time.process_time()
        extender.filter(args)
        between = time.process_time()
        extender.prioritize(args)
        ended = time.process_time()
        extender.pending.clear()
        if i >= WARM_UP:
            timings["filter decide"].append(between - began)
            timings["prioritize decide"].append(ended - between)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before measuring")
    args = parser.parse_args()
    print(f"{'nodes':>6} {'body':>8} {'verb':<17} {'p50 ms':>8} {'p99 ms':>8}")
    for nodes in args.nodes:
        timings, size = measure(nodes, args.calls, args.gc_freeze)
        for verb, samples in timings.items():
            cuts = statistics.quantiles(samples, n=100)
            print(
                f"{nodes:>6} {size:>7}B {verb:<17} {cuts[49] * 1000:>8.2f} {cuts[98] * 1000:>8.2f}"
            )


if __name__ == "__main__":
    main()
