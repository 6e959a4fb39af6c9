"""The block-YAML reader gives exactly what ``yaml.safe_load`` gives, or declines.

Its expectation is PyYAML's safe loader on the same text: on the repository's
YAML files, on thousands of random documents dumped with ``yaml.safe_dump`` in
several styles, and on those documents mutated line by line (indentation off by
one, comments, stray dashes and colons, tabs, deleted or doubled lines) so that
many are malformed. Where PyYAML raises, the reader must decline; where it does
not decline, its value must equal PyYAML's, types and key order included.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.api.blockyaml import UnsupportedError, read, readable
from modelplane.api.manifests import document_lines, load_paths, parse_text

ROOT = Path(__file__).resolve().parents[2]


def same(a: Any, b: Any) -> bool:
    """Equal, with equal types all the way down (True is not 1) and keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def outcome(text: str) -> tuple[str, Any]:
    """("declined", None), or ("read", value) where PyYAML agrees; fails where it does not."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    try:
        value = read(lines)
    except UnsupportedError:
        return ("declined", None)
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        pytest.fail(f"read {value!r} where PyYAML raises {exc}:\n{text}")
    assert same(value, expected), f"{value!r} != {expected!r} for:\n{text}"
    return ("read", value)


READ = {
    "a flat mapping": "a: b\nc: d\n",
    "nested mappings and sequences, indentless and indented": (
        "spec:\n  pools:\n  - name: p\n    zones:\n      - a\n      - b\n  count: 3\n"
    ),
    "YAML 1.1 plain scalars resolve as the safe loader resolves them": (
        "i: 12\no: 0o14\nx: 0x1f\nf: 1.5\ne: 1e3\ninf: .inf\nb: yes\nn: ~\nnull2: null\n"
        "off: off\nneg: -3\nund: 1_000\nnan: .nan\nempty:\n"
    ),
    "quoted scalars are strings": "a: '12'\nb: \"true\"\nc: 'it''s'\nd: ''\ne: \"\"\n",
    "non-string keys": "1: one\ntrue: yes\nnull: x\n1.5: y\n",
    "empty flow collections": "a: {}\nb: []\nc:\n- {}\n- []\n",
    "comments and blank lines between entries": "# head\na: 1\n\n  # indented\nb:\n# x\n  c: 2\n",
    "a later duplicate key wins in the first key's place": "a: 1\nb: 2\na: 3\n",
    "spaces inside and after plain scalars": "a: Ada  Lovelace   \nb:    x\n",
    "a sequence item holding a mapping, wider dash": "-   a: 1\n    b: 2\n- c\n",
    "an indented top-level mapping": "  a: 1\n  b: 2\n",
    "an empty document": "# only a comment\n\n",
    "trailing comments": "a: 1 # one\nb: # two\n  c: 'x' # three\n",
    "colons and hashes inside plain scalars": "image: vllm/vllm:v1\nurl: http://x/#y\nt: 12:30\n",
}

DECLINED = {
    "anchors and aliases": "a: &x 1\nb: *x\n",
    "a timestamp": "t: 2026-01-01\n",
    "a multi-line plain scalar": "a: one\n  two\n",
    "a block scalar": "a: |\n  one\n",
    "a flow collection with content": "a: [1, 2]\n",
    "a tab": "a:\t1\n",
    "a key with a space before its colon": "a : 1\n",
    "a lone dash": "-\n  a: 1\n",
    "a nested sequence on one line": "- - a\n",
    "a bad indentation": "a:\n  b: 1\n c: 2\n",
    "a key after an indented sequence": "a:\n  - x\n  b: 1\n",
    "an explicit tag": "a: !!str 1\n",
    "a scalar document": "just text\n",
    "a double-quoted escape": 'a: "x\\ny"\n',
    "a colon ending a plain scalar": "a: b:\n",
    "a merge key": "<<: {a: 1}\n",
}


@pytest.mark.parametrize("text", READ.values(), ids=list(READ))
def test_reads_the_common_shape_as_safe_load_does(text: str) -> None:
    assert outcome(text)[0] == "read"


@pytest.mark.parametrize("text", DECLINED.values(), ids=list(DECLINED))
def test_declines_what_it_does_not_handle(text: str) -> None:
    assert readable(text) is ("\t" not in text)
    assert outcome(text)[0] == "declined"


def test_only_printable_ascii_and_newlines_are_readable() -> None:
    assert readable("a: b\n")
    assert not readable("a: é\n")
    assert not readable("a: b\r\n")
    assert not readable("a:\tb\n")


def _repository_documents() -> Iterator[tuple[str, str]]:
    for path in sorted(ROOT.glob("**/*.y*ml")):
        parts = set(path.relative_to(ROOT).parts)
        if parts & {".venv", ".git", "node_modules", "templates"} or path.suffix not in (
            ".yaml",
            ".yml",
        ):
            continue
        text = path.read_text(encoding="utf-8")
        if readable(text):
            for i, lines in enumerate(document_lines(text)):
                yield f"{path.relative_to(ROOT)}#{i}", "\n".join(lines) + "\n"


def test_every_document_of_the_repository_reads_as_safe_load_or_is_declined() -> None:
    results = [outcome(text)[0] for _, text in _repository_documents()]
    assert len(results) > 30
    assert results.count("read") > 10


SCALARS: list[Any] = [
    *(
        [
            "a",
            "name",
            "x-y",
            "modelplane.ai/region",
            "pool-1",
            "Ada_Lovelace",
            "(x)",
            "+1",
            "./x",
            "_",
        ]
    ),
    *(
        [
            "1",
            "0x1f",
            "0o17",
            "1_000",
            "-1",
            "1e3",
            "1.5",
            ".inf",
            "-.inf",
            ".nan",
            "12:30",
            "2026-01-01",
            "=",
            "<<",
        ]
    ),
    *(
        [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "true",
            "false",
            "True",
            "NULL",
            "null",
            "~",
            "---",
            "...",
            "-",
            "@x",
            "`x",
            "[x]",
            "{x}",
        ]
    ),
    "",
    " lead",
    "trail ",
    "a  b",
    "a: b",
    "#x",
    "x #y",
    "'q'",
    '"dq"',
    "it's",
    "back\\slash",
    "- x",
    "&a",
    "*a",
    "!t",
    "|",
    ">",
    "%",
    "é",
    "tab\tx",
    "line\nbreak",
    "a" * 90,
    " ".join(["word"] * 30),
    0,
    1,
    -7,
    123456789012,
    1.5,
    -0.0,
    1e20,
    True,
    False,
    None,
]
KEYS: list[Any] = [s for s in SCALARS if isinstance(s, str) and s] + [1, True, None, 2.5]


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth >= 4 or roll < 0.45:
        return rng.choice(SCALARS)
    if roll < 0.75:
        return {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(0, 5))}
    return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def _plain_value(rng: random.Random, depth: int) -> Any:
    """Values of the everyday shape, so that most of them are read, not declined."""
    roll = rng.random()
    if depth >= 4 or roll < 0.5:
        return rng.choice(["a", "pool-1", "x y", "12", 3, 0, True, None, "yes", "", "it's", 1.5])
    if roll < 0.8:
        keys = ["name", "count", "spec", "metadata", "items", "on", "1", "modelplane.ai/x"]
        return {rng.choice(keys): _plain_value(rng, depth + 1) for _ in range(rng.randrange(1, 4))}
    return [_plain_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def _dump(rng: random.Random, value: Any) -> str:
    return yaml.safe_dump(
        value,
        default_flow_style=False,
        indent=rng.choice([2, 4]),
        sort_keys=rng.random() < 0.5,
        width=rng.choice([20, 80, 1000]),
        allow_unicode=rng.random() < 0.5,
    )


def _documents(count: int) -> list[str]:
    rng = random.Random(13)
    out = []
    for i in range(count):
        make = _plain_value if i % 2 else _value
        out.append(_dump(rng, {rng.choice(["a", "spec", "kind"]): make(rng, 0), "b": make(rng, 1)}))
    return out


def _mutated(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randrange(1, 3)):
        i = rng.randrange(len(lines))
        line = lines[i]
        choice = rng.randrange(12)
        if choice == 0:
            lines[i] = " " + line
        elif choice == 1:
            lines[i] = line[1:] if line.startswith(" ") else line
        elif choice == 2:
            lines[i] = "  " + line
        elif choice == 3:
            lines.insert(i, " " * rng.randrange(0, 6) + "# note")
        elif choice == 4:
            lines[i] = line + " # note"
        elif choice == 5:
            lines[i] = line + "   "
        elif choice == 6:
            lines[i] = line.replace(": ", ":", 1)
        elif choice == 7:
            stripped = line.lstrip(" ")
            lines[i] = line[: len(line) - len(stripped)] + "- " + stripped
        elif choice == 8:
            del lines[i]
        elif choice == 9:
            lines.insert(i, line)
        elif choice == 10:
            lines[i] = line.replace("- ", "-   ", 1)
        else:
            lines[i] = line.replace(" ", "", 1)
        if not lines:
            lines = [""]
    return "\n".join(lines)


def test_random_documents_read_as_safe_load_or_are_declined() -> None:
    results = [outcome(text)[0] for text in _documents(1500) if readable(text)]
    assert len(results) > 1000
    assert results.count("read") > 400  # not a vacuous pass: most everyday ones are read


def test_mutated_documents_are_declined_where_safe_load_fails() -> None:
    rng = random.Random(7)
    results = []
    for text in _documents(1500):
        for _ in range(3):
            mutated = _mutated(rng, text)
            if readable(mutated):
                results.append(outcome(mutated)[0])
    assert results.count("read") > 500
    assert results.count("declined") > 500


def test_a_file_reads_the_same_with_or_without_the_fast_reader(tmp_path: Path) -> None:
    rng = random.Random(3)
    texts = _documents(200)
    stream = "".join(f"---\n{t}" if rng.random() < 0.9 else f"--- # c\n{t}...\n" for t in texts)
    fast = parse_text(stream, Path("x.yaml"))
    slow = parse_text(stream + "\ttab: 1\n", Path("x.yaml"))  # a tab: not readable, all PyYAML
    assert [p.source for p in fast] == [p.source for p in slow[: len(fast)]]
    assert all(same(a.raw, b.raw) for a, b in zip(fast[:-1], slow[:-1], strict=False))
    path = tmp_path / "stream.yaml"
    path.write_text(stream)
    assert len(load_paths([path]).objects) == len(texts)
