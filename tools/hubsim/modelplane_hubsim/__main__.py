"""`modelplane-hubsim`: serves model repositories as a Hugging Face Hub (a test double)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelplane_hubsim.server import HubServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="modelplane-hubsim",
        description="Serve ROOT/<org>/<name>/<revision>/... as a Hugging Face Hub (a test double; "
        "see tools/hubsim/README.md). Point clients at it with HF_ENDPOINT=http://HOST:PORT.",
    )
    parser.add_argument("--root", type=Path, required=True, help="the folder of repositories")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--throttle-mib-s", type=float, help="cap all file bodies together at this rate"
    )
    parser.add_argument(
        "--cut-after-mib", type=float, help="break every file answer after this many MiB"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"--root {args.root}: not a folder")
    throttle = args.throttle_mib_s * 1024 * 1024 if args.throttle_mib_s else None
    cut = int(args.cut_after_mib * 1024 * 1024) if args.cut_after_mib else None
    server = HubServer(args.root, (args.host, args.port), throttle, args.verbose, cut)
    # Hash every file now: a first listing of a large repository would outlast a client's timeout.
    for snapshot in server.hub.warm():
        size = sum(f.size for f in snapshot.files) / 1024**2
        print(f"{snapshot.repo_id} {snapshot.commit} {len(snapshot.files)} files {size:.1f} MiB")
    print(f"serving {args.root} at {server.endpoint}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
