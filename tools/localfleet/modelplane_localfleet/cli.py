"""`modelplane-localfleet`: the local fleet's command line.

Today: `build` (the components, into the cache, whatever is missing; prints each
stage's time, where each binary is and its size) and `gomod` (regenerate the
wrapper modules' go.mod and go.sum from the pins in `versions`). `up`, `down`,
`status`, `exec` and cluster lifecycle come with the harness.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from modelplane_localfleet import binaries, versions, wrappers
from modelplane_localfleet.components import COMPONENTS

MIB = 1 << 20


def _du(path: Path) -> int:
    """Bytes under `path` (0 when it does not exist)."""
    if not path.exists():
        return 0
    result = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=False)
    return int(result.stdout.split()[0]) if result.stdout else 0


def _build(args: argparse.Namespace) -> int:
    cache = Path(args.cache) if args.cache else binaries.default_cache()
    chosen = [c for c in COMPONENTS if not args.component or c.name in args.component]
    started = time.monotonic()
    built = False
    try:
        for component in chosen:
            was_complete = binaries.complete(component, cache)
            entry = binaries.build(component, cache)
            built = built or not was_complete
            state = "cached" if was_complete else "built"
            print(f"{component.name} {component.version}: {state} at {entry}")
            for binary in component.binaries:
                size = (entry / binary.name).stat().st_size
                print(f"  {binary.name:<26}{size / MIB:7.1f} MiB")
            for manifests in component.manifests:
                count = len(list((entry / manifests.target).glob("*.yaml")))
                print(f"  {manifests.target + '/':<26}{count:3d} files from {component.upstream}")
    except binaries.BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the unfinished entry is rebuilt next time", file=sys.stderr)
        return 130
    print(f"done in {time.monotonic() - started:.1f}s")
    if built or args.disk_usage:
        env = binaries.go_env()
        for what, path in (
            ("local fleet cache", cache / "localfleet"),
            ("Go module cache", Path(env["GOMODCACHE"])),
            ("Go build cache", Path(env["GOCACHE"])),
        ):
            print(f"disk: {what} {_du(path) / MIB:,.0f} MiB at {path}")
    return 0


def _gomod(args: argparse.Namespace) -> int:
    chosen = [c for c in COMPONENTS if not args.component or c.name in args.component]
    for component in chosen:
        path = wrappers.regenerate(component)
        print(f"wrote {path} and its go.sum")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="modelplane-localfleet", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    names = [c.name for c in COMPONENTS]
    build = sub.add_parser(
        "build",
        help="build the fleet's binaries and manifests into the cache (only what is missing)",
    )
    build.add_argument(
        "--component", action="append", choices=names, help="repeatable; default all"
    )
    build.add_argument(
        "--cache", help="cache folder (default $MODELPLANE_CACHE or ~/.cache/modelplane)"
    )
    build.add_argument(
        "--disk-usage", action="store_true", help="also print the disk the caches use"
    )
    build.set_defaults(run=_build)
    regen = sub.add_parser(
        "gomod",
        help=f"regenerate the wrapper modules' go.mod/go.sum (Kubernetes {versions.KUBERNETES}: "
        "replace lines from the release's own go.mod)",
    )
    regen.add_argument("--component", action="append", choices=names)
    regen.set_defaults(run=_gomod)
    return top


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code
