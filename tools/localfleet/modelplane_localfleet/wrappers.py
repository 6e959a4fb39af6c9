"""Regenerates the wrapper Go modules under `tools/localfleet/go/` from the pins in `versions`.

`spec` says what each wrapper's go.mod must hold (for Kubernetes, read from the
pinned release's own go.mod); `regenerate` writes it and lets Go fill in the
rest: `go mod tidy` adds the commands' requirements and go.sum, or, for a
wrapper that only carries manifests (Gateway API), `go mod download` records
the module's checksum. A component with `carries_replaces` (skaffold) gets its
upstream's version-pinning replace lines, which Go ignores in a dependency.
The results are committed; builds never edit them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from modelplane_localfleet import gomod
from modelplane_localfleet.components import Component

GO_DIRECTIVE = "1.26.0"
MODULE_PREFIX = "modelplane.local/localfleet/"


def spec(component: Component) -> gomod.Wrapper:
    """The hand-written part of `component`'s wrapper go.mod."""
    module = MODULE_PREFIX + component.wrapper
    tools = tuple(binary.package for binary in component.binaries)
    upstream = component.upstream
    if upstream == "k8s.io/kubernetes":
        info = gomod.module_info(upstream, component.version)
        release = gomod.parse_release(component.version, Path(info["GoMod"]).read_text())
        return gomod.kubernetes_wrapper(module, release, tools)
    replaces: tuple[tuple[str, str], ...] = ()
    if component.carries_replaces:
        info = gomod.module_info(upstream, component.version)
        replaces = gomod.pinned_replaces(Path(info["GoMod"]).read_text())
    return gomod.Wrapper(
        module=module,
        go=GO_DIRECTIVE,
        requires=((upstream, component.version),),
        tools=tools,
        replaces=replaces,
    )


def regenerate(component: Component) -> Path:
    """Write `component`'s go.mod and go.sum; returns the go.mod path."""
    wrapper = spec(component)
    folder = component.module_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "go.mod").write_text(gomod.render(wrapper))
    (folder / "go.sum").unlink(missing_ok=True)
    if wrapper.tools:
        subprocess.run(["go", "mod", "tidy"], cwd=folder, check=True)
    else:
        for path, _ in wrapper.requires:
            subprocess.run(["go", "mod", "download", path], cwd=folder, check=True)
    return folder / "go.mod"
