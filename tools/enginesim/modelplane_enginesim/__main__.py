"""`python -m modelplane_enginesim`: run one simulated engine."""

from __future__ import annotations


def main() -> None:
    from modelplane_enginesim.cli import main as run

    run()


if __name__ == "__main__":
    main()
