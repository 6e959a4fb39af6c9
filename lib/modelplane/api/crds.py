"""Reads the generated modelplane.ai CustomResourceDefinitions, package data of ``modelplane``.

They are the repository's top-level ``crds/`` (``modelplane/crds`` links to it in a checkout and
is a copy in a wheel), found with ``importlib.resources`` so an installed wheel validates too.

The validator takes its schemas and CEL rules from these files, the same data
the API server is given, so offline validation and the cluster cannot drift.

Guarantees: ``load_crds`` returns one ``CrdInfo`` per modelplane.ai kind found,
keyed by kind; a directory without them raises ``FileNotFoundError`` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from modelplane.api.names import GROUP, VERSION

DEFAULT_CRD_DIR = Path(str(resources.files("modelplane") / "crds"))


@dataclass(frozen=True, slots=True)
class CrdInfo:
    """The parts of one CRD the validator needs."""

    kind: str
    plural: str
    scope: str
    schema: Mapping[str, Any]
    definition: Mapping[str, Any]


def crd_info(crd: Mapping[str, Any]) -> CrdInfo:
    """Extracts the v1alpha1 schema of one CRD object."""
    spec = crd["spec"]
    names = spec["names"]
    for version in spec["versions"]:
        if version["name"] == VERSION:
            schema = version["schema"]["openAPIV3Schema"]
            break
    else:
        raise ValueError(f"CRD {crd['metadata']['name']} has no {VERSION} version")
    return CrdInfo(names["kind"], names["plural"], spec["scope"], schema, crd)


def load_crds(directory: Path = DEFAULT_CRD_DIR) -> dict[str, CrdInfo]:
    """Every modelplane.ai CRD under ``directory``, keyed by kind."""
    out: dict[str, CrdInfo] = {}
    for path in sorted(directory.glob(f"{GROUP}_*.yaml")):
        # libyaml's safe loader when PyYAML has it: same rules, about 10x faster start-up.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for doc in yaml.load_all(path.read_text(), Loader=loader):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                info = crd_info(doc)
                out[info.kind] = info
    if not out:
        raise FileNotFoundError(f"no {GROUP} CRDs found in {directory}")
    return out
