"""Kubelet's image pulls for one pod: pull policy, events, ErrImagePull and its back-off.

`ImagePulls.image(container, reference)` returns the container's image once it
is on the node, as kubelet would get it: `IfNotPresent` (and `Never`) use a
local copy without asking the registry, `Always` asks every time (a cached
layer is not downloaded again). Events: `Pulling`, `Pulled` (or "already
present on machine"), and on failure `Failed` with the registry's answer plus
`Error: ErrImagePull`. The container then waits `ErrImagePull` for
`ERROR_SHOWN_S`, then `ImagePullBackOff` (event `BackOff`) until the back-off
has passed: kubelet's 10 s, doubling per failure up to 300 s, reset by a
success. `Never` without a local copy is `ErrImageNeverPull`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from modelplane_localfleet.nodeagent import images, layers
from modelplane_localfleet.nodeagent.images import ImageStore

__all__ = ["ImagePulls", "ImageStore"]

BACKOFF_START_S = 10.0
BACKOFF_MAX_S = 300.0
ERROR_SHOWN_S = 2.0

Event = Callable[[str, str, str], Awaitable[None]]  # type, reason, message
Waiting = Callable[[str, str, str], None]  # container, reason, message
Sleep = Callable[[float], Awaitable[None]]  # returns early when the pod is deleted


class ImagePulls:
    def __init__(
        self,
        store: ImageStore,
        event: Event,
        waiting: Waiting,
        sleep: Sleep,
        deleting: asyncio.Event,
    ) -> None:
        self.store = store
        self.deleting = deleting
        self.event = event
        self.waiting = waiting
        self.sleep = sleep
        self.backoff: dict[str, float] = {}

    @staticmethod
    def reference(image: str) -> images.Reference | None:
        """What to pull for `image`: None when no fleet registry serves it."""
        return images.fleet_reference(image)

    async def image(
        self, container: dict[str, Any], reference: images.Reference
    ) -> images.Image | None:
        """The image on the node; None after a failure and its back-off (retry then)."""
        name, image_name = container["name"], str(container["image"])
        policy = images.pull_policy(container)
        present = self.store.present(reference)
        if present is not None and policy != "Always":
            await self.event(
                "Normal", "Pulled", f'Container image "{image_name}" already present on machine'
            )
            return present
        if policy == "Never":
            message = f'Container image "{image_name}" is not present with pull policy of Never'
            self.waiting(name, "ErrImageNeverPull", message)
            await self.event("Warning", "ErrImageNeverPull", message)
            await self.sleep(BACKOFF_MAX_S)
            return None
        await self.event("Normal", "Pulling", f'Pulling image "{image_name}"')
        began = asyncio.get_running_loop().time()
        try:
            image = await self.store.pull(reference)
        except (images.PullError, layers.LayerError) as error:
            await self._failed(name, image_name, str(error))
            return None
        self.backoff.pop(name, None)
        took = asyncio.get_running_loop().time() - began
        await self.event("Normal", "Pulled", (
            f'Successfully pulled image "{image_name}" in {took:.3f}s. '
            f"Image size: {image.size} bytes."
        ))  # fmt: skip
        return image

    async def _failed(self, name: str, image_name: str, reason: str) -> None:
        message = f'Failed to pull image "{image_name}": {reason}'
        self.waiting(name, "ErrImagePull", message)
        await self.event("Warning", "Failed", message)
        await self.event("Warning", "Failed", "Error: ErrImagePull")
        delay = self.backoff.get(name, BACKOFF_START_S)
        self.backoff[name] = min(delay * 2, BACKOFF_MAX_S)
        await self.sleep(ERROR_SHOWN_S)
        if self.deleting.is_set():
            return
        back_off = f'Back-off pulling image "{image_name}"'
        self.waiting(name, "ImagePullBackOff", f"{back_off}: ErrImagePull: {reason}")
        await self.event("Normal", "BackOff", back_off)
        await self.event("Warning", "Failed", "Error: ImagePullBackOff")
        await self.sleep(max(delay - ERROR_SHOWN_S, 0.0))
