"""`modelplane-localfleet`: the local fleet's command line.

Today: `build` (the binaries, into the cache, whatever is missing) and `gomod`
(regenerate the Kubernetes wrapper module's go.mod from the pinned release).
`up`, `down`, `status`, `exec` and cluster lifecycle come with the harness.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from modelplane_localfleet import binaries, gomod

WRAPPER_MODULE = "modelplane.local/localfleet/k8s"


def _build(args: argparse.Namespace) -> int:
    cache = Path(args.cache) if args.cache else binaries.default_cache()
    chosen = [f for f in binaries.FAMILIES if not args.family or f.name in args.family]
    started = time.monotonic()
    try:
        for family in chosen:
            entry = binaries.build(family, cache)
            print(f"{family.name} {family.version}: {entry}")
    except binaries.DiskSpaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"done in {time.monotonic() - started:.0f}s")
    return 0


def _gomod(args: argparse.Namespace) -> int:
    version = binaries.KUBERNETES_VERSION
    info = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        capture_output=True,
        text=True,
        check=True,
    )
    go_mod = Path(json.loads(info.stdout)["GoMod"]).read_text()
    release = gomod.parse_release(version, go_mod)
    target = binaries.KUBERNETES.module_dir / "go.mod"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(gomod.wrapper_go_mod(WRAPPER_MODULE, release))
    # Let Go add the commands' own requirements (and go.sum) on top of the generated lines.
    packages = [f"{pkg}@{version}" for _, pkg in binaries.KUBERNETES.binaries]
    subprocess.run(["go", "get", *packages], cwd=target.parent, check=True)
    print(f"wrote {target} and its go.sum")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="modelplane-localfleet", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    build = sub.add_parser(
        "build", help="build the fleet's binaries into the cache (only what is missing)"
    )
    build.add_argument("--family", action="append", choices=[f.name for f in binaries.FAMILIES])
    build.add_argument(
        "--cache", help="cache folder (default $MODELPLANE_CACHE or ~/.cache/modelplane)"
    )
    build.set_defaults(run=_build)
    regen = sub.add_parser(
        "gomod", help="regenerate the Kubernetes wrapper go.mod from the release"
    )
    regen.set_defaults(run=_gomod)
    return top


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code
