"""`modelplane-localfleet` / `python -m modelplane_localfleet`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from modelplane_localfleet.cli import run


def main(argv: Sequence[str] | None = None) -> int:
    return run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
