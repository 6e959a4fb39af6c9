"""Where the fleet-scheduler's view of the fleet comes from.

``SnapshotSource`` is the port: ``objects()`` returns the modelplane.ai objects the
service observes (InferenceClasses, InferenceClusters, ModelCaches, ModelReplicas,
ModelDeployments) as plain mappings, in a stable order; ``offline`` says whether they
lack status (then a cluster without status counts as Ready, as in ``modelplane schedule``).

``StaticSnapshot``: manifests read once from files and directories at startup.
``LiveSnapshot``: what the reconcile loop's last pass read from its cache of the control
cluster.

Guarantees: ``StaticSnapshot.load`` either loads every document or raises
``SnapshotLoadError`` listing each bad one ("FILE (document N): why"); the objects
it returns are never mutated by the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelplane.api.manifests import load_paths


class SnapshotSource(Protocol):
    """The observed fleet, as plain objects."""

    @property
    def offline(self) -> bool:
        """True when the objects carry no status (files rather than a live cluster)."""
        ...

    def objects(self) -> Sequence[Mapping[str, Any]]:
        """Every observed object, in a stable order."""
        ...


class SnapshotLoadError(ValueError):
    """Some fleet manifest could not be read or parsed."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = tuple(errors)


@dataclass(frozen=True, slots=True)
class StaticSnapshot:
    """A fixed set of objects, typically loaded from ``--fleet`` paths."""

    items: tuple[Mapping[str, Any], ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def offline(self) -> bool:
        return True

    def objects(self) -> Sequence[Mapping[str, Any]]:
        return self.items

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> StaticSnapshot:
        """Reads manifest files and directories (recursively, sorted); none gives an empty fleet."""
        roots = list(paths)
        if not roots:
            return cls()
        try:
            loaded = load_paths(roots)
        except FileNotFoundError as exc:
            raise SnapshotLoadError([str(exc)]) from exc
        if loaded.errors:
            raise SnapshotLoadError(loaded.errors)
        return cls(tuple(loaded.objects), tuple(loaded.sources))


class LiveSnapshot:
    """The objects the last reconcile pass read from the cache, served to gRPC calls.

    Every copy of the service keeps one up to date (the leader and the standbys),
    so read-only calls answer from any copy. Replaced whole, never mutated, so
    gRPC threads read a consistent set.
    """

    def __init__(self) -> None:
        self.items: tuple[Mapping[str, Any], ...] = ()

    @property
    def offline(self) -> bool:
        return False

    def objects(self) -> Sequence[Mapping[str, Any]]:
        return self.items

    def update(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.items = tuple(objects)
