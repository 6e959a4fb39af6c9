"""`modelplane`: the command line for people.

Subcommands:
- `schedule -f PATH [-f PATH ...] [-o json|yaml|table]`: place every ModelDeployment
  in the manifests exactly as the running fleet-scheduler would, without a cluster.
- `explain md/NAME -n NS [-f PATH ...]`: why each replica is where it is; offline
  with `-f`, else asked of the running fleet-scheduler over gRPC.
- `localfleet ...`: the local fleet's harness (`modelplane-localfleet`), for a
  development checkout where it is installed.

Exit status: 0 when everything was placed or is merely unschedulable; 2 when a
manifest is malformed or invalid or a deployment has an error (the whole
report is still printed).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelplane.cli import TOUR_STATE

if TYPE_CHECKING:
    from modelplane.scheduling.offline import Plan

EXIT_OK = 0
EXIT_INVALID = 2


def _plan_files(filenames: list[str]) -> tuple[bool, Plan]:
    """Loads the manifests (printing parse errors) and plans them; (any parse error, plan).

    The API, CEL and scheduling modules are imported here, by the commands that plan
    (the others, `localfleet` for one, do without them). The cyclic garbage collector
    is paused meanwhile, and what was built is then left out of later collections
    (``gc.freeze``): this one-shot work keeps nearly all it builds until the command
    exits, so each collection would only rescan the thousands of loaded objects
    (about a sixth of the run on a large fleet)."""
    gc.disable()
    try:
        from modelplane.api.manifests import load_paths
        from modelplane.scheduling.offline import plan

        loaded = load_paths(filenames)
        for problem in loaded.errors:
            print(f"error: {problem}", file=sys.stderr)
        return bool(loaded.errors), plan(loaded.objects, sources=loaded.sources)
    finally:
        gc.freeze()
        gc.enable()


def _schedule(args: argparse.Namespace) -> int:
    unreadable, result = _plan_files(args.filename)
    from modelplane.cli import output

    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.output == "table":
        sys.stdout.write(output.as_table(result.deployments, result.accounting))
    else:
        render = {"json": output.as_json, "yaml": output.as_yaml}[args.output]
        sys.stdout.write(render(result.deployments))
    return EXIT_INVALID if unreadable or result.failed else EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    kind, _, name = args.target.partition("/")
    if not name or kind.lower() not in {"md", "modeldeployment", "modeldeployments"}:
        print(f"error: expected md/NAME, got {args.target!r}", file=sys.stderr)
        return EXIT_INVALID
    if not args.filename:
        from modelplane.cli.remote import explain_remote

        if not (args.scheduler or os.environ.get("MODELPLANE_FLEET_SCHEDULER")):
            state = _running_local_fleet()
            if state:
                # The scheduler that `modelplane up` started listens inside the fleet's
                # network namespace with mutual TLS: ask it from in there, as its CLI.
                again = [sys.executable, "-m", "modelplane", "explain", args.target]
                return _run_localfleet(
                    ["exec", "--state", state, "--", *again, "-n", args.namespace]
                )
        return explain_remote(args.scheduler, args.namespace, name, args.tls_dir)
    _, result = _plan_files(args.filename)
    from modelplane.cli import output

    for report in result.deployments:
        if report.namespace == args.namespace and report.name == name:
            sys.stdout.write(output.explain(report))
            return EXIT_INVALID if report.error else EXIT_OK
    print(
        f"error: ModelDeployment {args.namespace}/{name} is not in the given manifests",
        file=sys.stderr,
    )
    return EXIT_INVALID


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="modelplane", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    schedule = sub.add_parser(
        "schedule", help="place ModelDeployments offline, as the fleet-scheduler would"
    )
    schedule.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        help="a manifest file or directory (repeatable; '-' reads stdin)",
    )
    schedule.add_argument("-o", "--output", choices=["json", "yaml", "table"], default="table")
    schedule.set_defaults(run=_schedule)

    explain = sub.add_parser("explain", help="why a deployment's replicas are where they are")
    explain.add_argument("target", help="md/NAME")
    explain.add_argument("-n", "--namespace", default="default")
    explain.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        help="compute offline from these manifests instead of asking the service",
    )
    explain.add_argument(
        "--scheduler",
        default=None,
        help="fleet-scheduler gRPC address (default $MODELPLANE_FLEET_SCHEDULER; else the "
        "local fleet `modelplane up` runs, when it runs; else 127.0.0.1:50061)",
    )
    explain.add_argument(
        "--tls-dir",
        default=None,
        help="directory with tls.crt, tls.key and ca.crt for mutual TLS "
        "(default $MODELPLANE_TLS_DIR; the local fleet's is config/control/tls/modelplane-cli)",
    )
    explain.set_defaults(run=_explain)

    up = sub.add_parser(
        "up",
        help="run the project on this machine (needs root): the local fleet, the control "
        "plane installed from this checkout's image with the Helm chart; again to upgrade",
    )
    up.add_argument("--tour", action="store_true", help="then walk the getting-started tour on it")
    up.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        help="FLEET.yaml: also start these InferenceClusters' simulated nodes (repeatable)",
    )
    up.add_argument("--state", default=TOUR_STATE, help=f"state directory (default {TOUR_STATE})")
    up.set_defaults(run=_up)
    down = sub.add_parser("down", help="stop what `up` started and delete its network namespace")
    down.add_argument("--state", default=TOUR_STATE, help=f"state directory (default {TOUR_STATE})")
    down.set_defaults(run=_down)

    localfleet = sub.add_parser(
        "localfleet",
        add_help=False,
        help="the local fleet: up, down, status, exec, add/stop/start/remove (see --help)",
    )
    localfleet.add_argument("arguments", nargs=argparse.REMAINDER)
    localfleet.set_defaults(run=_localfleet)
    return top


def _up(args: argparse.Namespace) -> int:
    if args.tour:
        if args.filename:
            print("error: --tour brings its own clusters; drop -f", file=sys.stderr)
            return EXIT_INVALID
        return _run_localfleet(["tour", "--state", args.state])
    files = [f"--file={path}" for path in args.filename]
    return _run_localfleet(["up", "--chart", "--state", args.state, *files])


def _down(args: argparse.Namespace) -> int:
    return _run_localfleet(["down", "--state", args.state])


def _localfleet(args: argparse.Namespace) -> int:
    return _run_localfleet(list(args.arguments))


def _running_local_fleet() -> str | None:
    """The state directory of the local fleet `modelplane up` runs ($MODELPLANE_FLEET_STATE,
    else the default), when one runs here; None otherwise."""
    state = os.environ.get("MODELPLANE_FLEET_STATE") or TOUR_STATE
    if not (Path(state) / "fleet.json").exists():
        return None
    try:
        from modelplane_localfleet.layout import namespace_name
        from modelplane_localfleet.netns import RUN_DIR
    except ImportError:
        return None
    return state if (RUN_DIR / namespace_name(Path(state))).exists() else None


def _run_localfleet(arguments: list[str]) -> int:
    try:
        from modelplane_localfleet.cli import run
    except ImportError:
        print(
            "error: the local fleet ships with a development checkout (tools/install)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    code: int = run(arguments)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["localfleet"]:
        # Everything after `localfleet` (its --help included) belongs to the harness.
        return _run_localfleet(arguments[1:])
    args = parser().parse_args(arguments)
    code: int = args.run(args)
    return code
