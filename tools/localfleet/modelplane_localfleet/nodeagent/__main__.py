"""`python -m modelplane_localfleet.nodeagent --config FILE --kubeconfig FILE`."""

from __future__ import annotations


def main() -> None:
    from modelplane_localfleet.nodeagent.agent import main as run

    run()


if __name__ == "__main__":
    main()
