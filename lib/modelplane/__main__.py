"""`python -m modelplane`: the same command line as the `modelplane` console script."""

from modelplane.cli.main import main

raise SystemExit(main())
