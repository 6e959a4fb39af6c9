"""The bounded scanner of large bodies against the full parse: the same prompt head and
decision for every valid JSON body, malformed walks refused, the documented limits."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pd_router import prompt
from pd_router.prompt import CHAT, COMPLETIONS, EXACT_MAX_BYTES, prefix_key, prompt_text, read
from pd_router.scan import Head, UnscannableError, scan

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNLIMITED = 0
"""No limit on the scanner's search steps (the limit has its own test)."""


class Pairs(list[tuple[str, Any]]):
    """A JSON object as its members in order, a key possibly repeated."""


# Characters that matter to a JSON string: quotes, backslashes, controls, non-ASCII (two,
# three and four UTF-8 bytes, the last a surrogate pair when escaped), lone surrogates.
CHARS = st.one_of(
    st.sampled_from(list('ab "\\/\n\t\x00\x1f\x7fé€😀\U0010ffff\ud800\udfff')),
    st.characters(codec="utf-8"),
)
TEXT = st.text(CHARS, max_size=60)
KEYS = st.sampled_from(["messages", "prompt", "content", "text", "role", "model", "x", ""])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False), TEXT,
)  # fmt: skip


def objects(values: st.SearchStrategy[Any], keys: st.SearchStrategy[str] = KEYS) -> Any:
    return st.lists(st.tuples(keys, values), max_size=5).map(Pairs)


VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | objects(inner), max_leaves=12
)
PARTS = st.lists(
    objects(st.one_of(TEXT, VALUES), st.sampled_from(["type", "text", "text", "image_url"]))
    | VALUES,
    max_size=4,
)
MESSAGE = objects(
    st.one_of(TEXT, TEXT, PARTS, VALUES), st.sampled_from(["role", "content", "content", "name"])
)
MESSAGES = st.one_of(st.lists(st.one_of(MESSAGE, MESSAGE, VALUES), max_size=6), VALUES)
TOKEN_IDS = st.lists(st.one_of(st.integers(-5, 10**12), SCALARS), max_size=8)
PROMPT = st.one_of(TEXT, st.lists(st.one_of(TEXT, TOKEN_IDS, SCALARS), max_size=5), VALUES)
BODY = st.lists(
    st.one_of(
        st.tuples(st.just("messages"), MESSAGES),
        st.tuples(st.just("prompt"), PROMPT),
        st.tuples(KEYS, VALUES),
    ),
    max_size=6,
).map(Pairs)


def dump(value: Any, rng: random.Random) -> str:
    """JSON text of `value`, spelled at random among equivalent ways: whitespace, and
    every character of a string raw, as a short escape or as `\\uXXXX` (astral ones as a
    surrogate pair) where JSON allows."""

    def space() -> str:
        return rng.choice(["", "", " ", "\n\t ", "\r\n"])

    if isinstance(value, Pairs):
        members = [f"{space()}{dump(k, rng)}{space()}:{space()}{dump(v, rng)}{space()}"
                   for k, v in value]  # fmt: skip
        return "{" + (",".join(members) or space()) + "}"
    if isinstance(value, list):
        return "[" + (",".join(space() + dump(v, rng) + space() for v in value) or space()) + "]"
    if isinstance(value, str):
        return '"' + "".join(_char(c, rng) for c in value) + '"'
    return json.dumps(value)


SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\r": "\\r"}


def _char(c: str, rng: random.Random) -> str:
    code = ord(c)
    spellings = [] if c in '"\\' or code < 0x20 else [c]
    if c in SHORT:
        spellings.append(SHORT[c])
    if c == "/":
        spellings.append("\\/")
    if code > 0xFFFF:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        spellings.append(f"\\u{high:04x}\\u{low:04X}")
    else:
        spellings.append(f"\\u{code:04x}")
    return rng.choice(spellings)


def encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # what json.loads(bytes) decodes


def exact(path: str, data: bytes, limit: int) -> Head:
    doc = json.loads(data)
    return Head(prompt_text(path, doc)[:limit], not doc)


@SETTINGS
@given(BODY, st.sampled_from([CHAT, COMPLETIONS]), st.integers(0, 40), st.randoms())
def test_the_scanner_reads_every_valid_body_as_the_full_parse_does(
    body: Pairs, path: str, limit: int, rng: random.Random
) -> None:
    data = encoded(dump(body, rng))
    assert scan(data, path == CHAT, limit, UNLIMITED) == exact(path, data, limit)


@SETTINGS
@given(BODY, st.sampled_from([CHAT, COMPLETIONS]), st.randoms())
def test_the_scanner_gives_the_same_key_and_decision(
    body: Pairs, path: str, rng: random.Random
) -> None:
    # The router's own reading: 4 blocks of 8 characters, prefill from 20 characters.
    data = encoded(dump(body, rng))
    scanned = scan(data, path == CHAT, 32, UNLIMITED)
    assert scanned is not None
    text = prompt_text(path, json.loads(data))
    assert (len(scanned.text) >= 20) == (len(text) >= 20)
    assert prefix_key(scanned.text, 8, 4) == prefix_key(text, 8, 4)


@SETTINGS
@given(BODY, st.sampled_from([CHAT, COMPLETIONS]), st.randoms(), st.data())
def test_a_body_cut_short_is_not_an_object(
    body: Pairs, path: str, rng: random.Random, data: st.DataObject
) -> None:
    whole = encoded(dump(body, rng))
    cut = data.draw(st.integers(1, len(whole) - 1))
    assert scan(whole[:cut], path == CHAT, data.draw(st.integers(0, 40)), UNLIMITED) is None


def test_long_strings_are_read_only_as_far_as_the_limit() -> None:
    # Escapes, surrogate pairs and multi-byte characters around every possible cut.
    for unit in ("a", "é", "😀", "\\n", "\\u00e9", "\\ud83d\\ude00", '\\"', "\\\\"):
        text = (unit + "xy") * 400
        data = f'{{"prompt":"{text}"}}'.encode()
        for limit in range(60):
            assert scan(data, False, limit, UNLIMITED) == exact(COMPLETIONS, data, limit)


STRUCTURE_FAULTS = [
    b'{"prompt":"x",}', b'{"prompt" "x"}', b'{prompt:"x"}', b'{"prompt":"x"} tail',
    b'{"prompt":"x"}}', b'{"a":[1,2}', b'{"a":{"b":1]}', b'{"a":"unclosed}', b'{"a":tru}',
    b'{"a":-}', b"[1,2]", b'"a string"', b"", b"  ", b'{"messages":[{"content":"x"}',
]  # fmt: skip
PROMPT_FAULTS = [
    b'{"prompt":"bad \\q escape"}', b'{"prompt":"control \x01"}', b'{"prompt":"\xff"}',
    b'{"prompt":[01]}', b'{"prompt":[1 2]}', b'{"prompt":["a" "b"]}', b'{"prompt":[[1,]]}',
    b'{"prompt":[' + b"9" * 5000 + b"]}",
]  # fmt: skip
MESSAGES_FAULTS = [
    b'{"messages":[{"content":"bad \\q"}]}', b'{"messages":[{"content" "x"}]}',
    b'{"messages":[{"content":[{"text":"\x02"}]}]}', b'{"messages":[{"role":"u",}]}',
    b'{"messages":[{"content":"x"},]}',
]  # fmt: skip


@pytest.mark.parametrize(
    ("chat", "data"),
    [(chat, data) for data in STRUCTURE_FAULTS for chat in (True, False)]
    + [(False, data) for data in PROMPT_FAULTS]
    + [(True, data) for data in MESSAGES_FAULTS],
)
def test_a_malformed_walk_is_not_an_object(chat: bool, data: bytes) -> None:
    assert not isinstance(_parsed(data), dict)
    assert scan(data, chat, 100, UNLIMITED) is None


def _parsed(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def test_a_fault_inside_a_skipped_value_goes_unseen() -> None:
    # The one documented difference: what the scanner skips is not checked inside.
    data = b'{"tools":[{"x":"bad \\q escape"},[1 2]],"prompt":"hello"}'
    with pytest.raises(ValueError):
        json.loads(data)
    assert scan(data, False, 100, UNLIMITED) == Head("hello", False)


def test_repeated_keys_take_the_last_value_everywhere() -> None:
    data = (
        b'{"messages":[{"content":"first"}],"messages":[{"content":"a","content":"b"},'
        b'{"content":[{"text":"c","text":"d"},{"text":"e","text":7}]}],"model":"m"}'
    )
    assert scan(data, True, 100, UNLIMITED) == Head("b\nd", False) == exact(CHAT, data, 100)


def test_other_encodings_and_dense_bodies_are_left_to_the_full_parse() -> None:
    utf16 = '{"prompt":"hi"}'.encode("utf-16")
    padded = ('{"prompt":"hi"}' + " " * EXACT_MAX_BYTES).encode("utf-16")
    assert json.loads(utf16) == {"prompt": "hi"}
    with pytest.raises(UnscannableError):
        scan(utf16, False, 10)
    dense = json.dumps({"x": [[1]] * 300, "prompt": "hi"}).encode()
    with pytest.raises(UnscannableError):
        scan(dense, False, 10)
    assert scan(dense, False, 10, step_bytes=2) == Head("hi", False)
    sparse = json.dumps({"x": ["word " * 200] * 300, "prompt": "hi"}).encode()
    assert scan(sparse, False, 10) == Head("hi", False)
    assert read(COMPLETIONS, padded, 10) == Head("hi", False)


def test_large_bodies_are_scanned_and_small_ones_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    document = {"model": "m", "messages": [{"role": "user", "content": "word " * 200_000}]}
    large = json.dumps(document).encode()
    small = json.dumps({"prompt": "short"}).encode()
    expected = Head(prompt_text(CHAT, document)[:1024], False)

    def refuse(data: bytes) -> Any:
        raise AssertionError("parsed in full")

    monkeypatch.setattr(prompt, "json", SimpleNamespace(loads=refuse))
    assert read(CHAT, large, 1024) == expected
    with pytest.raises(AssertionError):
        read(COMPLETIONS, small, 1024)
    monkeypatch.undo()
    assert read(COMPLETIONS, small, 1024) == Head("short", False)
    assert read(COMPLETIONS, b'{"prompt": [1, 2]} trailing', 1024) is None
    assert read(COMPLETIONS, b"{}", 1024) == Head("", True)
