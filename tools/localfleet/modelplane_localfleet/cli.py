"""`modelplane-localfleet`: the local fleet's command line (also `modelplane localfleet`).

- `up -f FLEET.yaml --state DIR [--hub-root DIR]`, `down`, `status`, `exec -- CMD...`: the
  whole fleet (`--hub-root`: the model hub, see `hub`).
- `add NAME [-f FLEET.yaml]`, `stop NAME`, `start NAME`, `remove NAME`: one
  inference cluster while the fleet runs.
- `build` (the components, into the cache, whatever is missing; prints each
  stage's time, where each binary is and its size) and `gomod` (regenerate the
  wrapper modules' go.mod and go.sum from the pins in `versions`).

`--state` defaults to `$MODELPLANE_FLEET_STATE`, which `exec` sets for the
commands it runs. Errors go to stderr with exit status 2; `status` exits 1 when
a component is unhealthy.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

from modelplane_localfleet import binaries, fleetfile, versions, wrappers
from modelplane_localfleet.components import COMPONENTS
from modelplane_localfleet.controlplane import InstallError
from modelplane_localfleet.fleet import Fleet, FleetError
from modelplane_localfleet.netns import PrivilegeError, require_root

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


def _fleet(args: argparse.Namespace) -> Fleet:
    state = args.state or os.environ.get("MODELPLANE_FLEET_STATE")
    if not state:
        raise FleetError("say where the fleet's state lives: --state DIR")
    return Fleet(Path(state), cache=Path(args.cache) if args.cache else None)


def _up(args: argparse.Namespace) -> int:
    from modelplane_localfleet import controlplane

    entries = fleetfile.read(args.file or [])
    if args.hub_root is not None and not args.hub_root.is_dir():
        raise FleetError(f"--hub-root {args.hub_root}: not a folder")
    fleet = _fleet(args)
    if args.chart:
        require_root("the local fleet")  # before minutes of building, not after
        controlplane.prepare(fleet.state, fleet.cache)
    took = fleet.up(
        entries, with_services=args.services, hub_root=args.hub_root, with_keda=args.keda
    )
    print(f"fleet up in {took:.1f}s: network namespace {fleet.namespace.name}, state {fleet.state}")
    if args.chart:
        began = time.monotonic()
        installed = controlplane.install(fleet)
        print(
            f"control plane installed in {time.monotonic() - began:.1f}s: helm release "
            f"{installed.release} in {installed.namespace}, every pod Ready"
        )
    print("\n".join(fleet.summary()))
    if args.chart:
        from modelplane_localfleet.tour import first_steps

        print("\n" + "\n".join(first_steps(fleet.state, fleet.gateway_address())))
        return 0
    print(
        f"run clients inside it: modelplane-localfleet exec --state {fleet.state} -- kubectl get ns"
    )
    return 0


def _add(args: argparse.Namespace) -> int:
    entry = fleetfile.ClusterEntry(args.name, "Existing", None)
    if args.file:
        found = [e for e in fleetfile.read(args.file) if e.name == args.name]
        if not found:
            raise FleetError(f"no InferenceCluster named {args.name!r} in {', '.join(args.file)}")
        entry = found[0]
    fleet = _fleet(args)
    took = fleet.add(entry)
    print(f"{args.name}: added in {took:.1f}s")
    return 0


def _stop(args: argparse.Namespace) -> int:
    stopped = _fleet(args).stop(args.name)
    print(f"{args.name}: killed {', '.join(stopped) or 'nothing (not running)'}")
    return 0


def _start(args: argparse.Namespace) -> int:
    took = _fleet(args).start(args.name)
    print(f"{args.name}: started in {took:.1f}s")
    return 0


def _remove(args: argparse.Namespace) -> int:
    _fleet(args).remove(args.name)
    print(f"{args.name}: removed")
    return 0


def _tour(args: argparse.Namespace) -> int:
    from modelplane_localfleet.tour import Tour, next_steps

    fleet = _fleet(args)
    if fleet.namespace.exists():
        raise FleetError(
            f"a fleet already runs for {fleet.state}: `modelplane down --state {fleet.state}` first"
        )
    address = Tour(fleet).run()
    print("\n" + "\n".join(next_steps(fleet.state, address)))
    return 0


def _down(args: argparse.Namespace) -> int:
    fleet = _fleet(args)
    fleet.down(purge=args.purge)
    print(
        f"fleet down: namespace {fleet.namespace.name} deleted"
        + (", state removed" if args.purge else "")
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    rows = _fleet(args).status()
    print(f"{'CLUSTER':<14}{'COMPONENT':<26}{'PID':<9}{'HEALTH':<10}DETAIL")
    for row in rows:
        health = "healthy" if row.healthy else "down"
        print(f"{row.cluster:<14}{row.component:<26}{row.pid or '-'!s:<9}{health:<10}{row.detail}")
    return 0 if rows and all(r.healthy for r in rows) else 1


def _exec(args: argparse.Namespace) -> int:
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        raise FleetError("exec needs a command: exec --state DIR -- kubectl get nodes")
    return _fleet(args).exec(command)


def _fleet_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--state", help="the fleet's state directory (default $MODELPLANE_FLEET_STATE)"
    )
    command.add_argument(
        "--cache", help="binary cache (default $MODELPLANE_CACHE or ~/.cache/modelplane)"
    )


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

    up = sub.add_parser("up", help="start the control cluster and one cluster per InferenceCluster")
    up.add_argument(
        "-f", "--file", action="append", help="FLEET.yaml (repeatable; none: the control cluster)"
    )
    control_plane = up.add_mutually_exclusive_group()
    control_plane.add_argument(
        "--chart",
        action="store_true",
        help="also install the control plane as a platform team would: this checkout's image "
        "in the fleet registry, the Helm chart charts/modelplane (release modelplane)",
    )
    control_plane.add_argument(
        "--services",
        action="store_true",
        help="also run the control plane's services (cluster-provisioner, fleet-scheduler, "
        "endpoint-manager, gateway-config, cache-hydrator) as processes of the harness "
        "(benchmarks, tests of one service)",
    )
    up.add_argument(
        "--hub-root",
        type=Path,
        metavar="DIR",
        help="also serve DIR's model repositories (<org>/<name>/<revision>/...) as a Hugging "
        "Face hub at http://10.240.0.1:5080 (hub.modelplane.local), reachable from every "
        "cluster's pods; kept for later `up`s",
    )
    up.add_argument(
        "--keda",
        action="store_true",
        help="also run KEDA (operator, metrics adapter, admission webhooks) on the control "
        "cluster, building it first when missing (a cold build takes long); stays on",
    )
    _fleet_arguments(up)
    up.set_defaults(run=_up)
    add = sub.add_parser("add", help="add and start one inference cluster while the fleet runs")
    add.add_argument("name")
    add.add_argument("-f", "--file", action="append", help="read its InferenceCluster from here")
    _fleet_arguments(add)
    add.set_defaults(run=_add)
    for name, handler, text in (
        ("stop", _stop, "kill one inference cluster's processes at once (simulates losing it)"),
        ("start", _start, "start a stopped inference cluster again, with its data"),
        ("remove", _remove, "stop one inference cluster and delete its data"),
    ):
        one = sub.add_parser(name, help=text)
        one.add_argument("name")
        _fleet_arguments(one)
        one.set_defaults(run=handler)
    tour = sub.add_parser(
        "tour", help="bring up a fleet with the services and walk the getting-started tour"
    )
    _fleet_arguments(tour)
    tour.set_defaults(run=_tour)
    down = sub.add_parser("down", help="stop everything and delete the network namespace")
    down.add_argument("--purge", action="store_true", help="also delete the state directory")
    _fleet_arguments(down)
    down.set_defaults(run=_down)
    status = sub.add_parser("status", help="each component's process and health")
    _fleet_arguments(status)
    status.set_defaults(run=_status)
    execute = sub.add_parser(
        "exec", help="run a command inside the fleet (KUBECONFIG: control; kubectl on PATH)"
    )
    _fleet_arguments(execute)
    execute.add_argument("command", nargs=argparse.REMAINDER)
    execute.set_defaults(run=_exec)
    return top


def run(argv: list[str]) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        # a long build's progress must show as it comes, also into a CI log (a pipe)
        sys.stdout.reconfigure(line_buffering=True)
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (
        FleetError,
        PrivilegeError,
        fleetfile.FleetFileError,
        binaries.BuildError,
        InstallError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return code
