"""Objects on a named inference cluster, for asyncio services: a client of the `Fleet` API.

Services other than cluster-provisioner never hold a cluster's kubeconfig; they
call cluster-provisioner's `Fleet` gRPC API (mutual TLS) through `FleetClient`.
Every call carries the channel's default deadline and is retried on UNAVAILABLE
(`grpcutil.client.dial_aio`). Objects travel as dicts; the REST resource of a
kind comes from `RESOURCES`. A failed call raises `FleetError` with the gRPC code
and the server's message (which names the cluster and why); a missing object (or
a cluster the control plane no longer knows) is `None` from `get`, and a missing
object is `False` from `delete`.

`watch` streams one kind's changes (`Fleet.Watch`): an initial ADDED per
existing object, then ADDED, MODIFIED and DELETED as they happen. It has no
default deadline (unary calls keep `CALL_TIMEOUT_S`); it ends after `renew_s`
(DEADLINE_EXCEEDED, an ordinary end: call again) or raises `FleetError` when the
stream breaks, so a caller always sees a watch end and starts it over.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from modelplane.grpcutil.client import dial_aio
from modelplane.grpcutil.tls import TlsConfigError, TlsFiles
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2 as pb
from modelplane.proto.gen.modelplane.fleet.v1 import fleet_pb2_grpc as pb_grpc
from modelplane.service import MakeLoop, run_controller
from modelplane.wellknown import Json

SERVICE_NAME = "modelplane.fleet.v1.Fleet"
DEFAULT_TARGET = "127.0.0.1:50071"
CALL_TIMEOUT_S = 10.0
"""Deadline of every unary call (the channel has none, so that a watch can last)."""
RESOURCES = {
    ("v1", "Namespace"): "namespaces",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Pod"): "pods",
    ("v1", "Secret"): "secrets",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("batch/v1", "Job"): "jobs",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("apps/v1", "Deployment"): "deployments",
    ("resource.k8s.io/v1", "ResourceClaimTemplate"): "resourceclaimtemplates",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes",
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "leaderworkersets",
}


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a service that calls the Fleet API: `--fleet`, `--tls-cert`, `--tls-key`,
    `--tls-ca` and `--insecure` (for `FleetClient.connect`)."""
    parser.add_argument(
        "--fleet", default=DEFAULT_TARGET, help=f"the Fleet API (default {DEFAULT_TARGET})"
    )
    parser.add_argument("--tls-cert", help="PEM client certificate (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--tls-ca", help="PEM CA bundle the Fleet server's certificate chains to")
    parser.add_argument(
        "--insecure", action="store_true", help="allow plain gRPC to a non-loopback --fleet"
    )


def run_client_service(service: str, args: argparse.Namespace, make_loop: MakeLoop) -> None:
    """Run a controller that calls the Fleet API (`service.run_controller` with the
    flags of `add_controller_flags`); exit status 2, with a log line, when its TLS files
    cannot be read or plain gRPC is asked for off loopback."""
    try:
        asyncio.run(
            run_controller(service, args.kubeconfig, args.namespace, args.status_address, make_loop)
        )
    except (TlsConfigError, ValueError) as error:
        logging.getLogger(service.replace("-", "_")).error(
            "cannot reach the Fleet API", extra={"fields": {"fleet": args.fleet, "why": str(error)}}
        )
        sys.exit(2)


class FleetError(Exception):
    """A Fleet call failed; `code` is the gRPC status code's name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def resource(api_version: str, kind: str) -> str:
    try:
        return RESOURCES[(api_version, kind)]
    except KeyError:
        raise ValueError(f"no Fleet resource known for {api_version} {kind}") from None


class FleetClient:
    def __init__(self, channel: Any, field_manager: str) -> None:
        self.channel = channel
        self.stub = pb_grpc.FleetStub(channel)
        self.field_manager = field_manager

    @classmethod
    def connect(
        cls, target: str, field_manager: str, tls: TlsFiles | None, allow_insecure: bool = False
    ) -> FleetClient:
        channel = dial_aio(
            target, services=[SERVICE_NAME], deadline_s=None, tls=tls, allow_insecure=allow_insecure
        )
        return cls(channel, field_manager)

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            raise FleetError(error.code().name, str(error.details())) from None

    @staticmethod
    def _kind(cluster: str, api_version: str, kind: str) -> pb.Kind:
        return pb.Kind(
            cluster=cluster, api_version=api_version, resource=resource(api_version, kind)
        )

    async def apply(self, cluster: str, obj: Json) -> Json:
        """Server-side apply `obj` (with apiVersion, kind, metadata.name) on `cluster`."""
        request = pb.ApplyRequest(
            kind=self._kind(cluster, obj["apiVersion"], obj["kind"]),
            object_json=json.dumps(obj),
            field_manager=self.field_manager,
        )
        applied: Json = json.loads((await self._call(self.stub.Apply, request)).object_json)
        return applied

    async def get(
        self, cluster: str, api_version: str, kind: str, namespace: str, name: str
    ) -> Json | None:
        ref = pb.ObjectRef(
            kind=self._kind(cluster, api_version, kind), namespace=namespace, name=name
        )
        try:
            found: Json = json.loads((await self._call(self.stub.Get, ref)).object_json)
        except FleetError as error:
            if (
                error.code == "NOT_FOUND"
                and f"no InferenceCluster {cluster!r}" not in error.message
            ):
                return None
            raise
        return found

    async def delete(
        self, cluster: str, api_version: str, kind: str, namespace: str, name: str
    ) -> bool:
        ref = pb.ObjectRef(
            kind=self._kind(cluster, api_version, kind), namespace=namespace, name=name
        )
        found: bool = (await self._call(self.stub.Delete, ref)).found
        return found

    async def list(
        self, cluster: str, api_version: str, kind: str, namespace: str, label_selector: str = ""
    ) -> list[Json]:
        request = pb.ListRequest(
            kind=self._kind(cluster, api_version, kind),
            namespace=namespace,
            label_selector=label_selector,
        )
        reply = await self._call(self.stub.List, request)
        return [json.loads(o) for o in reply.objects_json]

    async def watch(
        self,
        cluster: str,
        api_version: str,
        kind: str,
        namespace: str = "",
        label_selector: str = "",
        renew_s: float = 300.0,
    ) -> AsyncIterator[tuple[str, Json]]:
        """(type, object) of every change of `kind` on `cluster` (namespace "" for all),
        starting with an ADDED per existing object; ends quietly after `renew_s`."""
        request = pb.ListRequest(
            kind=self._kind(cluster, api_version, kind),
            namespace=namespace,
            label_selector=label_selector,
        )
        call = self.stub.Watch(request, timeout=renew_s)
        try:
            async for event in call:
                yield event.type, json.loads(event.object_json)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise FleetError(error.code().name, str(error.details())) from None
        finally:
            call.cancel()
