"""Dry-run placement: the observed fleet overlaid with given manifests, then planned.

``parse_manifests(texts)`` parses the texts a client sent (YAML or JSON, multi-document);
``dry_run(observed, given, ...)`` overlays and places; ``explain(observed, ns, name)``
places the observed fleet and picks one deployment.

Overlay rule: a given object with the same kind, namespace and name as an observed one
replaces it where it stands; the others follow the observed objects, in the order given.
Deployments are then placed by ``modelplane.scheduling.offline.plan``, the function the
reconcile and ``modelplane schedule`` call: oldest first by creationTimestamp, then those
without one (given manifests, usually) in this order, so the answer matches both.

Pure: no gRPC, no I/O, no clock. Errors a caller made come back as ``InvalidManifestsError``
whose lines name the document ("manifests[I] (document J): why").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplane.api.manifests import parse_text
from modelplane.scheduling.offline import DeploymentReport, describe, plan

NAMESPACED_KINDS = frozenset({"ModelCache", "ModelReplica", "ModelDeployment"})
OBSERVED = "observed"

Key = tuple[str, str, str]


class InvalidManifestsError(ValueError):
    """Given manifests that do not parse, repeat an object, or hold invalid objects."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = tuple(errors)


@dataclass(frozen=True, slots=True)
class Given:
    """Parsed client manifests: objects and, for each, the document it came from."""

    objects: tuple[Mapping[str, Any], ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DryRun:
    deployments: tuple[DeploymentReport, ...]
    problems: tuple[str, ...]  # about observed objects left out


def key(obj: Mapping[str, Any]) -> Key:
    """(kind, namespace, name); namespaced kinds without a namespace are in "default"."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    kind = str(obj.get("kind", ""))
    namespace = meta.get("namespace") or ("default" if kind in NAMESPACED_KINDS else "")
    return kind, str(namespace), str(meta.get("name", ""))


def _suffix(text: str) -> str:
    """ ".json" for a JSON text (JSON allows tabs that YAML rejects), else YAML."""
    if text.lstrip().startswith(("{", "[")):
        try:
            json.loads(text)
        except ValueError:
            return ""
        return ".json"
    return ""


def parse_manifests(texts: Sequence[str]) -> Given:
    """Every document of ``texts``; raises ``InvalidManifestsError`` naming each bad document."""
    objects: list[Mapping[str, Any]] = []
    sources: list[str] = []
    errors: list[str] = []
    first: dict[Key, str] = {}
    for i, text in enumerate(texts):
        for parsed in parse_text(text, Path(f"manifests[{i}]{_suffix(text)}")):
            where = f"manifests[{i}] (document {parsed.source.index})"
            if parsed.raw is None:
                errors.append(f"{where}: {parsed.problem}")
                continue
            k = key(parsed.raw)
            if k in first:
                errors.append(f"{where}: {describe(parsed.raw)} is also given at {first[k]}")
                continue
            first[k] = where
            objects.append(parsed.raw)
            sources.append(where)
    if errors:
        raise InvalidManifestsError(errors)
    return Given(tuple(objects), tuple(sources))


def dry_run(
    observed: Sequence[Mapping[str, Any]],
    given: Given,
    *,
    offline: bool,
    only_given_deployments: bool = False,
) -> DryRun:
    """Places the overlay of ``given`` on ``observed``; raises ``InvalidManifestsError``
    when a given object other than a ModelDeployment is invalid."""
    given_by_key = {key(o): (o, s) for o, s in zip(given.objects, given.sources, strict=True)}
    objects: list[Mapping[str, Any]] = []
    sources: list[str] = []
    used: set[Key] = set()
    for obj in observed:
        k = key(obj)
        if k in given_by_key:
            replacement, source = given_by_key[k]
            objects.append(replacement)
            sources.append(source)
            used.add(k)
        elif not (only_given_deployments and k[0] == "ModelDeployment"):
            objects.append(obj)
            sources.append(OBSERVED)
    for obj, source in zip(given.objects, given.sources, strict=True):
        if key(obj) not in used:
            objects.append(obj)
            sources.append(source)

    result = plan(objects, offline=offline, sources=sources)
    given_prefixes = tuple(f"{s}: " for s in given.sources)
    bad_given = [p for p in result.problems if p.startswith(given_prefixes)]
    if bad_given:
        raise InvalidManifestsError(bad_given)
    deployments = result.deployments
    if only_given_deployments:
        wanted = {k for k in given_by_key if k[0] == "ModelDeployment"}
        deployments = tuple(
            d for d in deployments if ("ModelDeployment", d.namespace, d.name) in wanted
        )
    return DryRun(deployments, tuple(result.problems))


def explain(
    observed: Sequence[Mapping[str, Any]], namespace: str, name: str, *, offline: bool
) -> DeploymentReport | None:
    """The observed deployment ``namespace/name`` as placed among the whole fleet, or None."""
    namespace = namespace or "default"
    for report in dry_run(observed, Given((), ()), offline=offline).deployments:
        if report.namespace == namespace and report.name == name:
            return report
    return None


def being_deleted(observed: Sequence[Mapping[str, Any]], namespace: str, name: str) -> bool:
    """Whether the observed ModelDeployment ``namespace/name`` carries a deletionTimestamp
    (``plan`` does not place it: its replicas go with it)."""
    wanted = ("ModelDeployment", namespace or "default", name)
    for obj in observed:
        if key(obj) == wanted:
            meta = obj.get("metadata")
            return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))
    return False
