"""go.mod files for the wrapper modules that build Kubernetes from the Go module proxy.

`k8s.io/kubernetes` requires its staging modules at v0.0.0 and maps them to
`./staging/src/...` with replace lines; a dependent module's replace lines are
ignored by Go, so a wrapper that requires `k8s.io/kubernetes vX` must carry its
own `replace k8s.io/NAME => k8s.io/NAME v0.MINOR.PATCH` for every staging module.
They are generated here from the release's own go.mod, never typed by hand, and
its `godebug` line is copied too (a dependency's godebug does not apply).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STAGING = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/\1\s*$", re.M)
_GODEBUG = re.compile(r"^godebug\s+.+$", re.M)
_GO = re.compile(r"^go\s+(\S+)\s*$", re.M)


@dataclass(frozen=True, slots=True)
class KubernetesRelease:
    """What a wrapper module needs to know about one `k8s.io/kubernetes` release."""

    version: str
    go_directive: str
    godebug: str | None
    staging: tuple[str, ...]

    @property
    def staging_version(self) -> str:
        """v1.36.3 -> v0.36.3: the tag staging modules carry for this release."""
        major_minor_patch = self.version.removeprefix("v").split(".")
        return "v0." + ".".join(major_minor_patch[1:])


def parse_release(version: str, go_mod: str) -> KubernetesRelease:
    """Read the staging modules, go directive and godebug line of the release's go.mod."""
    staging = tuple(sorted(set(_STAGING.findall(go_mod))))
    if not staging:
        raise ValueError(f"k8s.io/kubernetes {version}: its go.mod has no ./staging replace lines")
    go = _GO.search(go_mod)
    godebug = _GODEBUG.search(go_mod)
    return KubernetesRelease(
        version=version,
        go_directive=go.group(1) if go else "1.26",
        godebug=godebug.group(0) if godebug else None,
        staging=staging,
    )


def wrapper_go_mod(module: str, release: KubernetesRelease) -> str:
    """The go.mod of a wrapper module that builds commands of `release`."""
    lines = [f"module {module}", "", f"go {release.go_directive}", ""]
    if release.godebug:
        lines += [release.godebug, ""]
    lines += [f"require k8s.io/kubernetes {release.version}", "", "replace ("]
    lines += [f"\t{name} => {name} {release.staging_version}" for name in release.staging]
    lines += [")", ""]
    return "\n".join(lines)
