"""Kubelet for one pod: start its containers, probe them, restart them, finish its deletion.

A `PodWorker` lives from the moment the agent sees the pod bound to one of its
nodes until the pod is terminal or deleted. Each container runs in its own
task: resolve the environment (retrying while a referenced ConfigMap or Secret
is missing), plan the command from the image, start the process, run startup,
readiness and liveness probes, and on exit restart it per `restartPolicy`
with a capped back-off. Before any container starts, the pod's volumes are made
(`volumes`: emptyDir, configMap, secret, downwardAPI, projected with tokens;
retried every few seconds while a source is missing, reason `ContainerCreating`
and a `FailedMount` event) and then kept current while the pod runs; they are
mounted at their paths for its processes alone. Containers get kubelet's
service variables (`KUBERNETES_SERVICE_HOST`, ...). A container whose image has
no local command runs without a process: with a readiness probe it never turns Ready, and an event
says why. Deletion stops every process (SIGTERM, the grace period, SIGKILL),
reports the containers terminated and removes the pod object, so DRA claims
are released. Status is pushed whenever it changes, coalesced.

Images a fleet registry serves are pulled (`pulls`: pull policy, events,
ErrImagePull and ImagePullBackOff) and run from their own root filesystem
(`rootfs`); any other image goes through the runtime map (`runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from modelplane.kube import TRANSIENT, Json

from modelplane_localfleet.nodeagent import containers, env, probes, runtime, volumes
from modelplane_localfleet.nodeagent.podstatus import ContainerRecord, pod_status, will_restart
from modelplane_localfleet.nodeagent.pulls import ImagePulls, ImageStore
from modelplane_localfleet.nodeagent.rootfs import (
    ConfigError,
    environment,
    launch_spec,
    launcher_argv,
)

log = logging.getLogger("nodeagent.pod")
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 20.0
CONFIG_RETRY_S = 3.0
Planned = tuple[list[str], dict[str, str], list[volumes.VolumeMount]] | str | None


class Host(volumes.Reader, Protocol):
    """What a pod worker needs from its agent."""

    async def service_env(self, pod: Json) -> dict[str, str]: ...

    async def read_objects(
        self, kind: str, namespace: str, names: set[str]
    ) -> Mapping[tuple[str, str], Mapping[str, str]]: ...

    async def patch_status(self, pod: Json, status: Json) -> None: ...

    async def event(self, pod: Json, kind: str, reason: str, message: str) -> None: ...

    async def remove(self, pod: Json) -> None: ...

    def pod_dir(self, pod: Json) -> Path: ...

    images: ImageStore
    hosts_file: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class PodWorker:
    def __init__(self, host: Host, pod: Json, pod_ip: str, host_ip: str, node: str) -> None:
        self.host = host
        self.pod = pod
        self.facts = env.PodFacts(pod_ip, host_ip, node)
        self.started_at = _now()
        self.deleting = asyncio.Event()
        self.dirty = asyncio.Event()
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        old = {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}
        self.records = {
            c["name"]: ContainerRecord(
                c["name"],
                c.get("image", ""),
                restart_count=old.get(c["name"], {}).get("restartCount", 0),
            )
            for c in pod["spec"].get("containers") or []
        }
        self.task: asyncio.Task[None] | None = None
        self.pulls = ImagePulls(
            host.images,
            lambda kind, reason, message: host.event(self.pod, kind, reason, message),
            lambda name, reason, message: self._set(self.records[name].waiting(reason, message)),
            self._sleep,
            self.deleting,
        )

    @property
    def name(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta.get('namespace')}/{meta['name']}"

    @property
    def policy(self) -> str:
        return str(self.pod["spec"].get("restartPolicy", "Always"))

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"pod {self.name}")

    def update(self, pod: Json) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()

    def _set(self, record: ContainerRecord) -> None:
        if self.records.get(record.name) != record:
            self.records[record.name] = record
            self.dirty.set()

    # -- the pod's life ------------------------------------------------------------

    async def _mount(self) -> asyncio.Task[None] | None:
        """Make the pod's volumes (retrying), then keep them current in the task returned."""
        pod_dir = self.host.pod_dir(self.pod)
        pod_volumes = volumes.PodVolumes(self.host, self.pod, self.facts, pod_dir)
        while problems := await pod_volumes.sync():
            message = "; ".join(problems)
            for record in list(self.records.values()):
                self._set(record.waiting("ContainerCreating", message))
            await self.host.event(self.pod, "Warning", "FailedMount", message)
            await self._sleep(CONFIG_RETRY_S)
            if self.deleting.is_set():
                return None
        return asyncio.create_task(pod_volumes.keep_current())

    async def run(self) -> None:
        reporter = asyncio.create_task(self._report())
        self.dirty.set()
        keeper = await self._mount()
        loops = [asyncio.create_task(self._container(c)) for c in self.pod["spec"]["containers"]]
        if keeper is None:
            self.deleting.set()
        done = asyncio.create_task(asyncio.wait(loops))
        deleting = asyncio.create_task(self.deleting.wait())
        await asyncio.wait([done, deleting], return_when=asyncio.FIRST_COMPLETED)
        if self.deleting.is_set():
            await self._terminate()
        for task in [*loops, deleting, done, *([keeper] if keeper else [])]:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self._push()
        reporter.cancel()
        if self.deleting.is_set():
            await self.host.remove(self.pod)

    async def _terminate(self) -> None:
        grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        running = list(self.processes.items())
        codes = await asyncio.gather(*(containers.stop(p, float(grace)) for _, p in running))
        for (name, _), code in zip(running, codes, strict=True):
            self._set(
                self.records[name].terminated(_now(), containers.exit_code(code), "Completed")
            )
        for record in list(self.records.values()):
            if record.state == "running":
                self._set(record.terminated(_now(), 0, "Completed"))
            elif record.state == "waiting":
                self._set(replace(record, state="terminated", exit_code=0, reason="Completed"))

    async def _report(self) -> None:
        while True:
            await self.dirty.wait()
            await asyncio.sleep(0.05)
            await self._push()

    async def _push(self) -> None:
        self.dirty.clear()
        status = pod_status(
            self.pod,
            [self.records[c["name"]] for c in self.pod["spec"]["containers"]],
            pod_ip=self.facts.pod_ip,
            host_ip=self.facts.host_ip,
            start_time=self.started_at,
            now=_now(),
        )
        try:
            await self.host.patch_status(self.pod, status)
        except TRANSIENT as error:
            log.warning("pod %s: status update failed: %s", self.name, error)
            self.dirty.set()

    # -- one container -------------------------------------------------------------

    async def _environment(self, container: Json) -> dict[str, str] | None:
        namespace = self.pod["metadata"].get("namespace", "default")
        config_maps = await self.host.read_objects(
            "configmaps", namespace, env.referenced(self.pod, "configMap")
        )
        secrets = await self.host.read_objects(
            "secrets", namespace, env.referenced(self.pod, "secret")
        )
        resolved = env.resolve(self.pod, container, self.facts, config_maps, secrets)
        if resolved.problems:
            message = "; ".join(resolved.problems)
            self._set(
                self.records[container["name"]].waiting("CreateContainerConfigError", message)
            )
            await self.host.event(self.pod, "Warning", "Failed", message)
            return None
        meta = self.pod["metadata"]
        identity = {
            "HOSTNAME": self.pod["spec"].get("hostname") or meta["name"],
            "MODELPLANE_POD_NAME": meta["name"],
            "MODELPLANE_POD_NAMESPACE": meta.get("namespace", "default"),
            "MODELPLANE_POD_IP": self.facts.pod_ip,
            "PYTHONUNBUFFERED": "1",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
        return {**await self.host.service_env(self.pod), **identity, **resolved.env}

    async def _command(self, container: Json, variables: dict[str, str]) -> Planned:
        """What to start: argv, env and mounts; a string when no local command exists (the
        reason); None when the image is not there yet (state set, back-off slept)."""
        directory = self.host.pod_dir(self.pod)
        mounts = volumes.container_mounts(self.pod, container, directory)
        reference = self.pulls.reference(str(container.get("image", "")))
        if reference is None:
            launch = runtime.plan(container, variables, self.facts.pod_ip)
            if isinstance(launch, runtime.Unknown):
                return launch.reason
            return [env.expand(a, variables) for a in launch.argv], variables, mounts
        image = await self.pulls.image(container, reference)
        if image is None:
            return None
        name = container["name"]
        binds = [(str(m.source), str(m.target), m.read_only) for m in mounts]
        layer = directory / "containers" / name
        try:
            spec = launch_spec(
                self.pod, container, image, variables, binds, self.host.hosts_file, layer / "fs"
            )
        except ConfigError as error:
            self._set(self.records[name].waiting("CreateContainerError", str(error)))
            await self.host.event(self.pod, "Warning", "Failed", f"Error: {error}")
            await self._sleep(CONFIG_RETRY_S)
            return None
        self._set(replace(self.records[name], image_id=image.image_id))
        image_env = environment(image, container, variables)
        return launcher_argv(spec, layer / "launch.json"), image_env, []

    async def _container(self, container: Json) -> None:
        name = container["name"]
        backoff = BACKOFF_START_S
        while not self.deleting.is_set():
            variables = await self._environment(container)
            if variables is None:
                await self._sleep(CONFIG_RETRY_S)
                continue
            planned = await self._command(container, variables)
            if planned is None:
                continue
            if isinstance(planned, str):
                await self._without_process(container, planned)
                return
            argv, variables, mounts = planned
            directory = self.host.pod_dir(self.pod)
            try:
                process = await containers.spawn(
                    argv, variables, directory, directory / "logs" / f"{name}.log", mounts
                )
            except OSError as error:
                self._set(self.records[name].waiting("RunContainerError", str(error)))
                await self.host.event(self.pod, "Warning", "Failed", f"{name}: {error}")
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            self.processes[name] = process
            self._set(self.records[name].running(_now(), process.pid))
            await self.host.event(self.pod, "Normal", "Started", f"Started container {name}")
            prober = asyncio.create_task(self._probe(container, process))
            code = await process.wait()
            prober.cancel()
            self.processes.pop(name, None)
            if self.deleting.is_set():
                return
            exit_code = containers.exit_code(code)
            record = self.records[name].terminated(
                _now(), exit_code, "Completed" if exit_code == 0 else "Error"
            )
            self._set(record)
            if not will_restart(self.policy, record):
                return
            self._set(record.restarted().waiting(
                "CrashLoopBackOff", f"back-off {backoff:g}s restarting failed container={name}"
            ))  # fmt: skip
            await self._sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _without_process(self, container: Json, reason: str) -> None:
        name = container["name"]
        await self.host.event(self.pod, "Warning", "NotSimulated", f"container {name}: {reason}")
        self._set(self.records[name].running(_now(), None))
        if container.get("readinessProbe") is None:
            self._set(replace(self.records[name], ready=True))
            await self.deleting.wait()
            return
        await self._probe(container, None)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.deleting.wait(), seconds)

    # -- probes --------------------------------------------------------------------

    async def _probe(self, container: Json, process: asyncio.subprocess.Process | None) -> None:
        name = container["name"]
        startup = container.get("startupProbe")
        if startup and not await self._startup(container, startup, process):
            await self._kill(name, process, "Startup")
            return
        readiness = container.get("readinessProbe")
        liveness = container.get("livenessProbe")
        if readiness is None:
            self._set(replace(self.records[name], ready=True))
        tasks = []
        if readiness is not None:
            tasks.append(asyncio.create_task(self._readiness(container, readiness, process)))
        if liveness is not None:
            tasks.append(asyncio.create_task(self._liveness(container, liveness, process)))
        try:
            if tasks:
                await asyncio.gather(*tasks)
            else:
                await self.deleting.wait()
        finally:
            for task in tasks:
                task.cancel()

    async def _attempt(
        self, container: Json, probe: Json, process: asyncio.subprocess.Process | None
    ) -> tuple[bool, str]:
        alive = process is not None and process.returncode is None
        return await probes.check(probe, container, self.facts.pod_ip, alive)

    async def _startup(
        self, container: Json, probe: Json, process: asyncio.subprocess.Process | None
    ) -> bool:
        """Run `probe` until it succeeds (True) or fails `failureThreshold` times (False)."""
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        failures = 0
        while True:
            ok, detail = await self._attempt(container, probe, process)
            if ok:
                return True
            failures += 1
            if failures >= int(probe.get("failureThreshold", 3)):
                await self.host.event(
                    self.pod, "Warning", "Unhealthy", f"Startup probe failed: {detail}"
                )
                return False
            await asyncio.sleep(float(probe.get("periodSeconds", 10)))

    async def _readiness(
        self, container: Json, probe: Json, process: asyncio.subprocess.Process | None
    ) -> None:
        name = container["name"]
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        successes = failures = 0
        reported = ""
        while True:
            ok, detail = await self._attempt(container, probe, process)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            record = self.records[name]
            if ok and successes >= int(probe.get("successThreshold", 1)):
                self._set(replace(record, ready=True))
            elif not ok and failures >= int(probe.get("failureThreshold", 3)):
                self._set(replace(record, ready=False))
            if not ok and detail != reported and process is not None:
                await self.host.event(
                    self.pod, "Warning", "Unhealthy", f"Readiness probe failed: {detail}"
                )
            reported = "" if ok else detail
            await asyncio.sleep(float(probe.get("periodSeconds", 10)))

    async def _liveness(
        self, container: Json, probe: Json, process: asyncio.subprocess.Process | None
    ) -> None:
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        failures = 0
        while True:
            ok, detail = await self._attempt(container, probe, process)
            failures = 0 if ok else failures + 1
            if failures >= int(probe.get("failureThreshold", 3)):
                await self.host.event(
                    self.pod, "Warning", "Unhealthy", f"Liveness probe failed: {detail}"
                )
                await self._kill(container["name"], process, "Liveness")
                return
            await asyncio.sleep(float(probe.get("periodSeconds", 10)))

    async def _kill(self, name: str, process: asyncio.subprocess.Process | None, kind: str) -> None:
        await self.host.event(
            self.pod, "Normal", "Killing",
            f"Container {name} failed {kind.lower()} probe, will be restarted",
        )  # fmt: skip
        if process is not None:
            grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
            await containers.stop(process, grace)
