"""`tools/image`: build, push and lock Modelplane's container image.

tools/image build [--output DIR] [--push REF] [--insecure]
tools/image skaffold            # a skaffold custom builder: $IMAGE, $PUSH_IMAGE
tools/image lock                # re-pin tools/imagebuild/debs.lock
tools/image trees --output DIR  # the layer trees as folders (the Containerfile's build)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from modelplane_imagebuild import build, debs, pydeps

ROOT = Path(__file__).resolve().parents[3]


def _crane() -> Path:
    from modelplane_localfleet import binaries
    from modelplane_localfleet.components import CRANE

    return binaries.build(CRANE, binaries.default_cache()) / "crane"


def _build(source: Path, output: Path, cache: Path, push_to: str | None, insecure: bool) -> int:
    started = time.monotonic()
    built = build.build(source, output, cache, build.uv_next_to_python(), say=_say)
    image = built.image
    summary = {
        "layout": str(image.layout),
        "digest": image.digest,
        "compressed_bytes": image.compressed_size,
        "uncompressed_bytes": image.uncompressed_size,
        "entrypoints": list(built.scripts),
        "seconds": round(time.monotonic() - started, 1),
    }
    if push_to:
        summary["pushed"] = build.push(_crane(), image.layout, push_to, insecure)
    print(json.dumps(summary, indent=2))
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/image",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", type=Path, default=ROOT, help="the source tree")
    parser.add_argument("--cache", type=Path, default=build.default_cache(),
                        help="downloads and built layers (default %(default)s)")  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    build_args = commands.add_parser("build", help="build the image as an OCI layout")
    build_args.add_argument("--output", type=Path, default=ROOT / "build" / "image",
                            help="the OCI layout folder (default %(default)s)")  # fmt: skip
    build_args.add_argument("--push", metavar="REF", help="push to this reference with crane")
    build_args.add_argument("--insecure", action="store_true", help="push over plain HTTP")
    commands.add_parser("skaffold", help="build and push $IMAGE when $PUSH_IMAGE is true")
    commands.add_parser("lock", help=f"re-pin {build.DEB_LOCK} from the apt sources")
    trees_args = commands.add_parser("trees", help="write the layer trees as folders")
    trees_args.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    source = args.source.resolve()
    try:
        if args.command == "build":
            return _build(source, args.output, args.cache, args.push, args.insecure)
        if args.command == "skaffold":
            image = os.environ.get("IMAGE")
            if not image:
                parser.error("skaffold: $IMAGE is not set (skaffold sets it for custom builders)")
            push_to = image if os.environ.get("PUSH_IMAGE") == "true" else None
            return _build(source, source / "build" / "image", args.cache, push_to, False)
        if args.command == "lock":
            pinned = debs.resolve()
            debs.write_lock(source / build.DEB_LOCK, pinned)
            _say(f"{build.DEB_LOCK}: {len(pinned)} packages")
            return 0
        build.trees(source, args.output, args.cache, build.uv_next_to_python())
        return 0
    except (build.ImageBuildError, debs.DebError, pydeps.PythonBuildError) as error:
        _say(f"tools/image: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
