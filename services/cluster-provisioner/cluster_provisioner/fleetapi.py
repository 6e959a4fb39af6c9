"""The `Fleet` gRPC API: objects on a named inference cluster, for the other services.

`Connections` (asyncio, on the service's event loop) turns a cluster name into
a client: it reads the InferenceCluster and its kubeconfig Secret on every call
from the reconcile loop's cache (kept by watches, so a rotated Secret takes
effect as soon as its event arrives), or from the control cluster while the
cache has not synced or lacks them, and reuses one connection per distinct
kubeconfig. `FleetServicer` runs in the gRPC
server's threads and hands each call to that loop with the call's deadline.
Failures become status codes whose message names the cluster and why:
NOT_FOUND (no such cluster or object), FAILED_PRECONDITION (no usable
kubeconfig), UNAVAILABLE (the cluster does not answer), INVALID_ARGUMENT (bad
JSON, or the cluster's API server refused the object).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import grpc
import httpx
import kr8s
import yaml
from modelplane.cache import Cache
from modelplane.kube import GoneError, Json, Kube
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2 as pb
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2_grpc as pb_grpc
from modelplane.wellknown import API

from cluster_provisioner import observe
from cluster_provisioner.status import Credentials

SERVICE_NAME = "modelplane.fleet.v1.Fleet"
DEFAULT_DEADLINE_S = 30.0
MAX_WAIT_S = 300.0
T = TypeVar("T")


class FleetCallError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def collection(kind: pb.Kind, namespace: str) -> str:
    base = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{scope}/{kind.resource}"


def _check_kind(kind: pb.Kind) -> None:
    for field in ("cluster", "api_version", "resource"):
        if not getattr(kind, field):
            raise FleetCallError(grpc.StatusCode.INVALID_ARGUMENT, f"kind.{field} is required")


class Connections:
    def __init__(self, control: Kube, namespace: str, cache: Cache | None = None) -> None:
        self.control = control
        self.namespace = namespace
        self.cache = cache

    def _cached(self, path: str, name: str, namespace: str = "") -> Json | None:
        if self.cache is None or not self.cache.synced:
            return None
        return self.cache.get(path, name, namespace)

    async def _credentials(self, cluster: Json) -> Credentials | None:
        name = observe.secret_name(cluster)
        if name is None:
            return None
        secrets = observe.secrets_path(self.namespace)
        secret = self._cached(secrets, name, self.namespace)
        if secret is None:
            secret = await self.control.get(f"{secrets}/{name}")
        return observe.credentials(cluster, secret, self.namespace)

    async def client(self, cluster: str, field_manager: str) -> Kube:
        clusters = f"{API}/inferenceclusters"
        found = self._cached(clusters, cluster) or await self.control.get(f"{clusters}/{cluster}")
        if found is None:
            raise FleetCallError(grpc.StatusCode.NOT_FOUND, f"no InferenceCluster {cluster!r}")
        credentials = await self._credentials(found)
        if credentials is None:
            raise FleetCallError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"cluster {cluster}: source {found['spec']['cluster']['source']} is not "
                "provisioned yet, so it has no kubeconfig",
            )
        if credentials.kubeconfig is None:
            raise FleetCallError(
                grpc.StatusCode.FAILED_PRECONDITION, f"cluster {cluster}: {credentials.message}"
            )
        shared = await Kube.connect(yaml.safe_load(credentials.kubeconfig), field_manager)
        return Kube(shared.api, field_manager or observe.FIELD_MANAGER)


def _translate(cluster: str, error: BaseException) -> FleetCallError:
    if isinstance(error, FleetCallError):
        return error
    if isinstance(error, kr8s.ServerError):
        response = getattr(error, "response", None)
        status = response.status_code if isinstance(response, httpx.Response) else 0
        if 400 <= status < 500:
            code = grpc.StatusCode.NOT_FOUND if status == 404 else grpc.StatusCode.INVALID_ARGUMENT
            return FleetCallError(code, f"cluster {cluster}: {error}")
    if isinstance(error, json.JSONDecodeError):
        return FleetCallError(grpc.StatusCode.INVALID_ARGUMENT, f"object_json: {error}")
    return FleetCallError(
        grpc.StatusCode.UNAVAILABLE, f"cluster {cluster}: {error or type(error).__name__}"
    )


class FleetServicer(pb_grpc.FleetServicer):
    def __init__(self, connections: Connections, loop: asyncio.AbstractEventLoop) -> None:
        self.connections = connections
        self.loop = loop

    def _run(self, cluster: str, call: Coroutine[Any, Any, T], context: Any) -> T:
        remaining = context.time_remaining()
        # No deadline reads as None or as a time far in the future: cap it.
        timeout = DEFAULT_DEADLINE_S if remaining is None else min(max(0.0, remaining), MAX_WAIT_S)
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(call, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"cluster {cluster}: no answer in time"
            )
        except BaseException as error:  # every failure becomes a status naming the cluster
            failure = _translate(cluster, error)
            context.abort(failure.code, failure.message)
        raise AssertionError("unreachable")

    def Apply(self, request: pb.ApplyRequest, context: Any) -> pb.ObjectResponse:  # noqa: N802
        async def apply() -> Json:
            _check_kind(request.kind)
            if not request.field_manager:
                raise FleetCallError(grpc.StatusCode.INVALID_ARGUMENT, "field_manager is required")
            obj = json.loads(request.object_json)
            meta = obj.get("metadata") or {}
            if not meta.get("name"):
                raise FleetCallError(
                    grpc.StatusCode.INVALID_ARGUMENT, "object_json: metadata.name is required"
                )
            kube = await self.connections.client(request.kind.cluster, request.field_manager)
            path = f"{collection(request.kind, meta.get('namespace', ''))}/{meta['name']}"
            return await kube.apply(path, obj)

        applied = self._run(request.kind.cluster, apply(), context)
        return pb.ObjectResponse(object_json=json.dumps(applied))

    def Get(self, request: pb.ObjectRef, context: Any) -> pb.ObjectResponse:  # noqa: N802
        async def get() -> Json:
            _check_kind(request.kind)
            kube = await self.connections.client(request.kind.cluster, "")
            found = await kube.get(f"{collection(request.kind, request.namespace)}/{request.name}")
            if found is None:
                where = f"{request.namespace}/" if request.namespace else ""
                raise FleetCallError(
                    grpc.StatusCode.NOT_FOUND,
                    f"cluster {request.kind.cluster}: "
                    f"{request.kind.resource} {where}{request.name} not found",
                )
            return found

        return pb.ObjectResponse(
            object_json=json.dumps(self._run(request.kind.cluster, get(), context))
        )

    def Delete(self, request: pb.ObjectRef, context: Any) -> pb.DeleteResponse:  # noqa: N802
        async def delete() -> bool:
            _check_kind(request.kind)
            kube = await self.connections.client(request.kind.cluster, "")
            return await kube.delete(
                f"{collection(request.kind, request.namespace)}/{request.name}"
            )

        return pb.DeleteResponse(found=self._run(request.kind.cluster, delete(), context))

    def List(self, request: pb.ListRequest, context: Any) -> pb.ListResponse:  # noqa: N802
        async def listing() -> list[Json]:
            _check_kind(request.kind)
            kube = await self.connections.client(request.kind.cluster, "")
            params = {"labelSelector": request.label_selector} if request.label_selector else None
            found = await kube.get(collection(request.kind, request.namespace), params)
            return list((found or {}).get("items", []))

        items = self._run(request.kind.cluster, listing(), context)
        return pb.ListResponse(objects_json=[json.dumps(i) for i in items])

    def Watch(self, request: pb.ListRequest, context: Any) -> Iterator[pb.WatchEvent]:  # noqa: N802
        events: queue.Queue[tuple[str, Json] | BaseException | None] = queue.Queue(maxsize=1000)

        async def pump() -> None:
            try:
                _check_kind(request.kind)
                kube = await self.connections.client(request.kind.cluster, "")
                path = collection(request.kind, request.namespace)
                params = {"labelSelector": request.label_selector} if request.label_selector else {}
                listing = await kube.get(path, params or None) or {}
                for item in listing.get("items", []):
                    events.put(("ADDED", item))
                version = listing.get("metadata", {}).get("resourceVersion", "0")
                async for event in kube.watch(path, {**params, "resourceVersion": version}):
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        events.put((event["type"], event["object"]))
                events.put(GoneError("the cluster ended the watch"))
            except BaseException as error:  # handed to the stream, which ends with a status
                events.put(error)

        future = asyncio.run_coroutine_threadsafe(pump(), self.loop)
        context.add_callback(future.cancel)
        while context.is_active():
            try:
                item = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                failure = _translate(request.kind.cluster, item)
                context.abort(failure.code, failure.message)
                return
            yield pb.WatchEvent(type=item[0], object_json=json.dumps(item[1]))


def register(servicer: FleetServicer) -> Any:
    def add(server: Any) -> None:
        pb_grpc.add_FleetServicer_to_server(servicer, server)

    return add
