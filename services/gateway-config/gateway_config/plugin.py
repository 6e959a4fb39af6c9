"""The front door's API key plugin for Traefik: where its source is and how Traefik loads it.

The check itself (`traefik_plugin/apikeys.go`, Go interpreted by Traefik's Yaegi,
standard library only) runs inside Traefik, so a keyed request costs no round trip;
gateway-config only renders each ModelService's table into the plugin's Middleware
(`gateway_config.keys.plugin_spec`). Traefik loads a local plugin at start from
`plugins-local/src/<MODULE>/` under its working directory, declared by the static
flag `static_flags` gives; `install` writes the source there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

NAME = "modelplanekeys"
"""The plugin's name in Traefik's static configuration and under a Middleware's `plugin`."""
MODULE = "modelplane.ai/apikeys"
SOURCE = Path(__file__).parent / "traefik_plugin"
FILES = (".traefik.yml", "go.mod", "apikeys.go")


def static_flags() -> list[str]:
    """Traefik's command-line flags that load the plugin (from its working directory)."""
    return [f"--experimental.localPlugins.{NAME}.moduleName={MODULE}"]


def install(workdir: Path) -> Path:
    """Copy the plugin's source under `workdir` (Traefik's working directory); the folder."""
    target = workdir / "plugins-local" / "src" / MODULE
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(SOURCE / name, target / name)
    return target
