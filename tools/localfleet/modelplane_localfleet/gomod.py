"""go.mod files for the wrapper modules that build the fleet's binaries from the Go module proxy.

Every binary family has a wrapper module under `tools/localfleet/go/` that
requires the upstream module and names the commands to build as `tool` lines
(so `go mod tidy` keeps them). `render` writes such a go.mod from a `Wrapper`.

`k8s.io/kubernetes` is special: it requires its staging modules at v0.0.0 and
maps them to `./staging/src/...` with replace lines, and a dependent module's
replace lines are ignored by Go, so the Kubernetes wrapper carries its own
`replace k8s.io/NAME => k8s.io/NAME v0.MINOR.PATCH` for every staging module.
`parse_release` reads them (and the `godebug` line, which does not apply from a
dependency either) from the release's own go.mod; nothing is typed by hand.
`pinned_replaces` reads another upstream's version-pinning replace lines
(skaffold's) for a wrapper to carry in the same way.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_STAGING = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/\1\s*$", re.M)
_GODEBUG = re.compile(r"^godebug\s+.+$", re.M)
_GO = re.compile(r"^go\s+(\S+)\s*$", re.M)
_BLOCK = re.compile(r"^(\w+)\s*\(\n(.*?)^\)", re.M | re.S)
_SINGLE = re.compile(r"^(\w+)\s+([^(\s].*)$", re.M)


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
        return "v0." + ".".join(self.version.removeprefix("v").split(".")[1:])


@dataclass(frozen=True, slots=True)
class Wrapper:
    """The hand-written part of a wrapper go.mod; `go mod tidy` adds the rest."""

    module: str
    go: str
    requires: tuple[tuple[str, str], ...]
    tools: tuple[str, ...] = ()
    replaces: tuple[tuple[str, str], ...] = ()
    godebug: str | None = None


def parse_release(version: str, go_mod: str) -> KubernetesRelease:
    """Read the staging modules, go directive and godebug line of the release's go.mod."""
    staging = tuple(sorted(set(_STAGING.findall(go_mod))))
    if not staging:
        raise ValueError(f"k8s.io/kubernetes {version}: its go.mod has no ./staging replace lines")
    go = _GO.search(go_mod)
    godebug = _GODEBUG.search(go_mod)
    return KubernetesRelease(
        version=version,
        go_directive=go.group(1) if go else "1.26.0",
        godebug=godebug.group(0) if godebug else None,
        staging=staging,
    )


def kubernetes_wrapper(module: str, release: KubernetesRelease, tools: tuple[str, ...]) -> Wrapper:
    """The wrapper that builds `tools` (command packages) of `release`."""
    return Wrapper(
        module=module,
        go=release.go_directive,
        requires=(("k8s.io/kubernetes", release.version),),
        tools=tools,
        replaces=tuple((name, release.staging_version) for name in release.staging),
        godebug=release.godebug,
    )


def render(wrapper: Wrapper) -> str:
    """The go.mod text of `wrapper` (replace targets are the same module path at a version)."""
    lines = [f"module {wrapper.module}", "", f"go {wrapper.go}", ""]
    if wrapper.godebug:
        lines += [wrapper.godebug, ""]
    lines += _directive("require", [f"{path} {version}" for path, version in wrapper.requires])
    lines += _directive("tool", list(wrapper.tools))
    lines += _directive(
        "replace", [f"{path} => {path} {version}" for path, version in wrapper.replaces]
    )
    return "\n".join(lines)


def _directive(verb: str, entries: list[str]) -> list[str]:
    if not entries:
        return []
    if len(entries) == 1:
        return [f"{verb} {entries[0]}", ""]
    return [f"{verb} (", *(f"\t{entry}" for entry in entries), ")", ""]


def directives(go_mod: str, verb: str) -> list[str]:
    """Every entry of `verb` (require, replace, tool...) in a go.mod, comments dropped."""
    entries = [body for found, body in _SINGLE.findall(go_mod) if found == verb]
    for found, body in _BLOCK.findall(go_mod):
        if found == verb:
            entries += body.splitlines()
    cleaned = (entry.split("//")[0].strip() for entry in entries)
    return [entry for entry in cleaned if entry]


def required_version(go_mod: str, module: str) -> str | None:
    """The version `go_mod` requires of `module`, or None."""
    for entry in directives(go_mod, "require"):
        path, _, version = entry.partition(" ")
        if path == module:
            return version.strip()
    return None


def pinned_replaces(go_mod: str) -> tuple[tuple[str, str], ...]:
    """`replace X => X vN` lines of `go_mod` as (X, vN); a replace to a folder is an error."""
    pinned = []
    for entry in directives(go_mod, "replace"):
        source, _, target = (part.strip() for part in entry.partition("=>"))
        target_path, _, version = target.partition(" ")
        if not version or source.split(" ")[0] != target_path:
            raise ValueError(f"replace {entry!r}: only same-module version pins can be carried")
        pinned.append((target_path, version.strip()))
    return tuple(sorted(pinned))


def stale_replaces(go_mod: str, release: KubernetesRelease) -> list[str]:
    """Replace lines `release` needs that `go_mod` lacks or has differently (empty: fresh)."""
    present = set(directives(go_mod, "replace"))
    wanted = [f"{name} => {name} {release.staging_version}" for name in release.staging]
    return [line for line in wanted if line not in present]


def module_info(module: str, version: str, cwd: Path | None = None) -> dict[str, str]:
    """`go mod download -json module@version`: the module's `Dir`, `GoMod` and more."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    info: dict[str, str] = json.loads(result.stdout) if result.stdout.strip() else {}
    if result.returncode != 0 or "Error" in info:
        raise RuntimeError(
            f"go mod download {module}@{version} failed: {info.get('Error') or result.stderr}"
        )
    return info
