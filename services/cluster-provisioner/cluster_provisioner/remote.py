"""The inference clusters as their watches show them: one `WatchedServer` per cluster.

`ClusterViews.inspect(name, kubeconfig)` starts watching a cluster on first use
(and afresh when its kubeconfig changed): its pool nodes, the serving stack's
CRDs and its Gateway (`observe.remote_paths`), on one connection per kubeconfig
(connecting bounded by `CONNECT_TIMEOUT_S`). It answers the cluster's
`Inspection` from that cache, with no request, or None while the first lists
are under way. Whatever changes there (an object, or the cluster being lost or
reached again: `modelplane.watchhealth`) calls `on_change(name)`, which the
service points at its reconcile loop, so the cluster's status follows within
moments. `forget(name)` stops watching a cluster that is gone, has no usable
kubeconfig, or is no longer this copy's to reconcile.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import yaml
from modelplane.cache import Lister
from modelplane.kube import Kube
from modelplane.watchhealth import WatchedServer

from cluster_provisioner import observe
from cluster_provisioner.status import Inspection

CONNECT_TIMEOUT_S = 5.0
log = logging.getLogger("cluster_provisioner")


async def connect(kubeconfig: str) -> Kube:
    """A client of the cluster of `kubeconfig` (its text), connecting within a bound."""
    return await Kube.connect(yaml.safe_load(kubeconfig), observe.FIELD_MANAGER, CONNECT_TIMEOUT_S)


def _ignore(_name: str) -> None:
    """Until the service points `on_change` at its loop."""


class ClusterViews:
    def __init__(self, connect: Callable[[str], Awaitable[Lister]] = connect) -> None:
        """`connect(kubeconfig)` (a test's fake server instead of `connect`)."""
        self.connect = connect
        self.on_change: Callable[[str], None] = _ignore
        self.views: dict[str, tuple[str, WatchedServer]] = {}

    def _start(self, name: str, kubeconfig: str) -> WatchedServer:
        view = WatchedServer(
            functools.partial(self.connect, kubeconfig),
            observe.remote_paths(),
            functools.partial(self._changed, name),
        )
        view.start()
        self.views[name] = (kubeconfig, view)
        log.info("watching the cluster", extra={"fields": {"cluster": name}})
        return view

    def _changed(self, name: str) -> None:
        self.on_change(name)

    async def inspect(self, name: str, kubeconfig: str) -> Inspection | None:
        """Cluster `name`'s `Inspection` as its watches show it; None until they have
        listed (or failed to)."""
        held = self.views.get(name)
        if held is not None and held[0] == kubeconfig:
            view = held[1]
        else:
            await self.forget(name)
            view = self._start(name, kubeconfig)
        failure = view.failure()
        return None if failure is None else observe.inspection(view.items, failure)

    async def forget(self, name: str) -> None:
        held = self.views.pop(name, None)
        if held is not None:
            await held[1].stop()
            log.info("stopped watching the cluster", extra={"fields": {"cluster": name}})
