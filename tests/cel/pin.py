"""Pins the expected outcome of every differential case from Kubernetes' Go library.

Run ``.venv/bin/python -m tests.cel.pin`` after adding corpus cases or
changing the generator: it evaluates every case with ``tools/celdiff`` and
writes the outcome as ``want`` into corpus.yaml (one flow mapping per line)
and into generated.yaml (name, device, expression, want).  The tests then
check our evaluator against these pinned outcomes with or without Go, and
check Go against them when Go is available.  Test-only helper.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml

from tests.cel import celdiff
from tests.cel.cases import HERE, all_cases, devices, go_device

_WANT = re.compile(r",\s*want:\s*[^,}]+(?=\})")


def outcome(result: dict[str, Any]) -> str:
    """The outcome category of one celdiff result."""
    if result["compileError"] is not None:
        return "compile error"
    if result["runtimeError"] is not None:
        return "runtime error"
    return "match" if result["matched"] else "no match"


def main() -> int:
    cases = all_cases()
    table = devices()
    payload = [
        {"id": c.name, "expression": c.expression, "device": go_device(table[c.device])}
        for c in cases
    ]
    results = celdiff.run_cases(celdiff.build(), payload)
    wants = {name: outcome(r) for name, r in results.items()}
    corpus = HERE / "corpus.yaml"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        if line.startswith("- {name"):
            name = str(yaml.safe_load(line)[0]["name"])
            bare = _WANT.sub("", line)
            out.append(f"{bare[:-1]}, want: {wants[name]}}}")
        else:
            out.append(line)
    corpus.write_text("\n".join(out) + "\n", encoding="utf-8")
    generated = [
        {"name": c.name, "device": c.device, "expr": c.expression, "want": wants[c.name]}
        for c in cases
        if c.name.startswith("generated #")
    ]
    header = (
        "# Generated differential cases (tests/cel/generator.py) with the outcome\n"
        "# Kubernetes' Go library gives; rewritten by `python -m tests.cel.pin`.\n"
    )
    text = yaml.safe_dump({"cases": generated}, sort_keys=False, width=10_000, allow_unicode=True)
    (HERE / "generated.yaml").write_text(header + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
