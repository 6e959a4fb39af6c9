"""An OpenAI request's prompt head, read from a large JSON body without parsing all of it (pure).

`scan(data, chat, limit)` walks the body's top-level object and reads only the
prompt's field (`messages` for chat, `prompt` for completions), decoding only
the first `limit` characters of the prompt text, in the same reading as
`prompt.prompt_text`: chat messages' `content` (a string, or the `text`
strings of its parts) joined by newlines; a completion's `prompt` (a string, or
a list of strings and token id lists, joined by newlines; token ids as decimal
integers joined by spaces). Every other value is skipped with C-speed searches
(`bytes.find` for a string's closing quote, a regular expression for the next
bracket or quote, windows of a string with its escapes blotted out where
quotes are escaped), never a per-character Python loop over the body; the
copies are the decoded head and those windows, never the body.

Guarantees:
- For a UTF-8 JSON body that `json.loads` reads as an object, the result is
  `Head(prompt_text(path, json.loads(data))[:limit], empty)`: a repeated key
  takes its last value, as `json.loads` (and vLLM) does, at the top level, in
  a message and in a content part.
- `None` when the body is not a JSON object, or when what the scanner walks
  is malformed: the top-level object's members (keys, colons, commas, scalar
  values), the structure (brackets, quotes) of every value, the messages,
  content parts and prompt lists it reads, the part of the prompt it decodes.
- The exception: a fault inside a value it skips (a bad escape, a control
  character or invalid UTF-8 in a skipped string, a bad number or a missing
  comma inside a skipped array or object) is not seen; such a body reads as
  an object here though `json.loads` refuses it. (The engine still refuses it:
  the router's prefill answer is then an error, and the decode pod gets the
  client's own bytes.)
- `UnscannableError` is raised when the body is not plain UTF-8 (UTF-16 or
  UTF-32, which `json.loads` also reads), or as soon as its structure proves
  too dense for skipping to beat a full parse: more search steps (a string, a
  bracket, an escaped quote, a window of escapes) than `FREE_STEPS` plus one
  per `STEP_BYTES` bytes walked so far; so the time spent before giving up is
  at most about half a full parse of the part walked. The caller parses those
  bodies in full.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from json import decoder
from typing import NamedTuple

STEP_BYTES = 512
"""A walk may take one search step per this many bytes walked: a step costs about 1 us on
an idle core, `json.loads` about 4 ns per byte, so the scan stays under half its cost."""
FREE_STEPS = 64
"""Steps allowed before any byte counts (a body's first few keys)."""
MAX_CHAR_BYTES = 12
"""The most bytes one character takes in a JSON string (a surrogate pair: `\\uXXXX\\uXXXX`)."""
QUOTE_TRIES = 4
"""Escaped quotes in one string found one by one before its end is searched in windows."""
MASK_BYTES = 4096
"""The first window in which a string with many escaped quotes is searched for its end."""
KEY_MAX_BYTES = 12 * 8
"""The longest spelling of an eight-character key (`messages`) with every character escaped."""

SCANSTRING: Callable[[str, int, bool], tuple[str, int]] = decoder.scanstring  # type: ignore[attr-defined]
"""The json module's own string decoder (C): the contents after an opening quote, and the end."""
WHITESPACE = re.compile(rb"[ \t\n\r]*")
SCALAR = re.compile(
    rb"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?|true|false|null|NaN|-?Infinity"
)
STRUCTURE = re.compile(rb'["\[\]{}]')
CLOSER = {0x7B: 0x7D, 0x5B: 0x5D}
QUOTE, BACKSLASH = 0x22, 0x5C
ESCAPE_LENGTH = {ord(c): 2 for c in '"\\/bfnrt'} | {ord("u"): 6}


class Head(NamedTuple):
    """What the router reads of a request body: the prompt text's first `limit` characters
    and whether the object has no keys."""

    text: str
    empty: bool


class UnscannableError(Exception):
    """The body needs a full parse (see the module's guarantees)."""


class MalformedError(Exception):
    """The walked part of the body is not JSON."""


def scan(data: bytes, chat: bool, limit: int, step_bytes: int = STEP_BYTES) -> Head | None:
    """The prompt head of `data` (see the module's guarantees); None when it is not a JSON
    object. `step_bytes`: the bytes walked per search step allowed (0: no limit)."""
    if data[:1] in (b"\x00", b"\xfe", b"\xff") or data[1:2] == b"\x00":
        raise UnscannableError("not UTF-8")  # json.loads reads UTF-16 and UTF-32 too
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return _Scanner(data, step_bytes).body(start, chat, limit)
    except (MalformedError, ValueError):
        return None  # ValueError: what Python's own decoders refuse (UTF-8, escapes, big ints)


class _Joined:
    """The first `limit` characters of pieces joined by `separator`, as they are added."""

    def __init__(self, limit: int, separator: str) -> None:
        self.limit, self.separator = limit, separator
        self.pieces: list[str] = []
        self.length = 0

    def room(self) -> int:
        """How many characters of the next piece can still show."""
        return max(0, self.limit - self.length - (len(self.separator) if self.pieces else 0))

    def add(self, piece: str) -> None:
        self.length += len(piece) + (len(self.separator) if self.pieces else 0)
        self.pieces.append(piece)

    def text(self) -> str:
        return self.separator.join(self.pieces)[: self.limit]


class _Scanner:
    """One walk over `data`, counting its search steps."""

    def __init__(self, data: bytes, step_bytes: int) -> None:
        self.data = data
        self.step_bytes = step_bytes
        self.steps = 0

    def body(self, start: int, chat: bool, limit: int) -> Head | None:
        data = self.data
        p = self._space(start)
        if data[p : p + 1] != b"{":
            return None
        wanted = b"messages" if chat else b"prompt"
        text, empty = "", True
        p = self._space(p + 1)
        if data[p : p + 1] == b"}":
            p += 1
        else:
            while True:
                key, p = self._key(p)
                empty = False
                if key == wanted:
                    text, p = self._messages(p, limit) if chat else self._prompt(p, limit)
                else:
                    p = self._skip(p)
                p = self._after_member(p)
                if data[p - 1] == 0x7D:
                    break
        if self._space(p) != len(data):
            raise MalformedError("data after the object")
        return Head(text, empty)

    # The walk: each method takes the position of what it reads and returns what it
    # read with the position after it (and any whitespace there).

    def _space(self, p: int) -> int:
        return WHITESPACE.match(self.data, p).end()  # type: ignore[union-attr]

    def _key(self, p: int) -> tuple[bytes, int]:
        """A member's key (raw bytes, or decoded when short and escaped) and the position
        of its value."""
        if self.data[p : p + 1] != b'"':
            raise MalformedError("a key is not a string")
        end = self._string_end(p + 1)
        key = self.data[p + 1 : end - 1] if end - p - 2 <= KEY_MAX_BYTES else b""
        if b"\\" in key:
            key = _decoded(key).encode("utf-8", "surrogatepass")
        p = self._space(end)
        if self.data[p : p + 1] != b":":
            raise MalformedError("no colon after a key")
        return key, self._space(p + 1)

    def _after_member(self, p: int) -> int:
        """Past the `,` (and to the next key) or the `}` that follows an object's member."""
        p = self._space(p)
        mark = self.data[p : p + 1]
        if mark == b",":
            return self._space(p + 1)
        if mark == b"}":
            return p + 1
        raise MalformedError("no comma or closing brace after a member")

    def _after_element(self, p: int) -> tuple[int, bool]:
        """Past the `,` or `]` that follows an array element; whether it was the last."""
        p = self._space(p)
        mark = self.data[p : p + 1]
        if mark == b",":
            return self._space(p + 1), False
        if mark == b"]":
            return p + 1, True
        raise MalformedError("no comma or closing bracket after an element")

    def _elements(self, p: int) -> tuple[int, bool]:
        """Into an array: the first element's position, and whether the array is empty
        (then the position after it)."""
        p = self._space(p + 1)
        if self.data[p : p + 1] == b"]":
            return p + 1, True
        return p, False

    def _members(self, p: int) -> tuple[int, bool]:
        """Into an object: the first key's position, and whether the object is empty."""
        p = self._space(p + 1)
        if self.data[p : p + 1] == b"}":
            return p + 1, True
        return p, False

    def _messages(self, p: int, limit: int) -> tuple[str, int]:
        """Chat `messages`: each object's `content` text, joined by newlines."""
        if self.data[p : p + 1] != b"[":
            return "", self._skip(p)
        joined = _Joined(limit, "\n")
        p, done = self._elements(p)
        while not done:
            if joined.length >= limit:
                return joined.text(), self._close(p, [0x5D])  # later messages cannot show
            if self.data[p : p + 1] == b"{":
                content, p = self._message(p, joined.room())
                joined.add(content)
            else:
                p = self._skip(p)
            p, done = self._after_element(p)
        return joined.text(), p

    def _message(self, p: int, room: int) -> tuple[str, int]:
        """One message object's `content` text (the last `content` key's), up to `room`."""
        content = ""
        p, done = self._members(p)
        while not done:
            key, p = self._key(p)
            if key == b"content":
                content, p = self._content(p, room)
            else:
                p = self._skip(p)
            p = self._after_member(p)
            done = self.data[p - 1] == 0x7D
        return content, p

    def _content(self, p: int, room: int) -> tuple[str, int]:
        """A message's content: a string, or its parts' `text` strings run together."""
        mark = self.data[p : p + 1]
        if mark == b'"':
            return self._string(p, room)
        if mark != b"[":
            return "", self._skip(p)
        joined = _Joined(room, "")
        p, done = self._elements(p)
        while not done:
            if self.data[p : p + 1] == b"{":
                text, p = self._part(p, joined.room())
                joined.add(text)
            else:
                p = self._skip(p)
            p, done = self._after_element(p)
        return joined.text(), p

    def _part(self, p: int, room: int) -> tuple[str, int]:
        """One content part's `text` (the last `text` key's) when it is a string."""
        text = ""
        p, done = self._members(p)
        while not done:
            key, p = self._key(p)
            if key == b"text" and self.data[p : p + 1] == b'"':
                text, p = self._string(p, room)
            else:
                text = "" if key == b"text" else text
                p = self._skip(p)
            p = self._after_member(p)
            done = self.data[p - 1] == 0x7D
        return text, p

    def _prompt(self, p: int, limit: int) -> tuple[str, int]:
        """A completion's `prompt`: a string, or strings and token id lists by newlines."""
        mark = self.data[p : p + 1]
        if mark == b'"':
            return self._string(p, limit)
        if mark != b"[":
            return "", self._skip(p)
        joined = _Joined(limit, "\n")
        p, done = self._elements(p)
        while not done:
            if joined.length >= limit:
                return joined.text(), self._close(p, [0x5D])
            mark = self.data[p : p + 1]
            if mark == b'"':
                text, p = self._string(p, joined.room())
            elif mark == b"[":
                text, p = self._token_ids(p, joined.room())
            else:
                text, p = self._integer(p)
            joined.add(text)
            p, done = self._after_element(p)
        return joined.text(), p

    def _token_ids(self, p: int, room: int) -> tuple[str, int]:
        """A token id list: its integers in decimal joined by spaces (anything else as empty)."""
        joined = _Joined(room, " ")
        p, done = self._elements(p)
        while not done:
            if joined.length >= room:
                return joined.text(), self._close(p, [0x5D])
            text, p = self._integer(p)
            joined.add(text)
            p, done = self._after_element(p)
        return joined.text(), p

    def _integer(self, p: int) -> tuple[str, int]:
        """A value as a token id: an integer in decimal; any other value as empty."""
        match = SCALAR.match(self.data, p)
        if match is None:
            return "", self._skip(p)
        whole, fraction, exponent = match.groups()
        if whole is None or fraction or exponent:
            return "", match.end()
        return str(int(whole)), match.end()  # int(): Python's digit limit as json.loads

    def _skip(self, p: int) -> int:
        """Past one value: a scalar (checked), a string or a nested array or object (their
        structure checked, not their contents)."""
        mark = self.data[p : p + 1]
        if mark == b'"':
            return self._string_end(p + 1)
        if mark in (b"{", b"["):
            return self._close(p + 1, [CLOSER[mark[0]]])
        match = SCALAR.match(self.data, p)
        if match is None:
            raise MalformedError("not a JSON value")
        return match.end()

    def _close(self, p: int, closers: list[int]) -> int:
        """Past the brackets still open (`closers`, innermost last), strings skipped whole."""
        data, find = self.data, STRUCTURE.search
        while closers:
            self._step(p)
            match = find(data, p)
            if match is None:
                raise MalformedError("an array or object is not closed")
            p = match.end()
            mark = data[p - 1]
            if mark == QUOTE:
                p = self._string_end(p)
            elif mark in CLOSER:
                closers.append(CLOSER[mark])
            elif closers.pop() != mark:
                raise MalformedError("mismatched brackets")
        return p

    def _string(self, p: int, room: int) -> tuple[str, int]:
        """A string's first `room` characters, decoded, and the position after it."""
        end = self._string_end(p + 1)
        start, stop = p + 1, end - 1
        if stop - start > MAX_CHAR_BYTES * (room + 3):
            stop = self._cut(start, start + MAX_CHAR_BYTES * (room + 3))
        return _decoded(self.data[start:stop])[:room], end

    def _cut(self, start: int, stop: int) -> int:
        """`stop` moved back to a character's boundary: not inside a UTF-8 sequence or an
        escape (a surrogate pair cut in two leaves its first half last, past `room`)."""
        data = self.data
        while data[stop] & 0xC0 == 0x80 and stop > start:
            stop -= 1
        slash = data.rfind(b"\\", max(start, stop - 5), stop)
        if slash >= 0:
            run = slash
            while run > start and data[run - 1] == BACKSLASH:
                run -= 1
            opens = (slash - run) % 2 == 0  # the run's last backslash starts an escape
            if opens and slash + ESCAPE_LENGTH.get(data[slash + 1], 2) > stop:
                stop = slash
        return stop

    def _string_end(self, p: int) -> int:
        """The position after the closing quote of the string whose contents start at `p`:
        the next quote not escaped (its backslashes counted back) among the first
        `QUOTE_TRIES` quotes, else `_string_end_masked` from there."""
        data = self.data
        for _ in range(QUOTE_TRIES):
            quote = data.find(b'"', p)
            if quote < 0:
                raise MalformedError("a string is not closed")
            if data[quote - 1] != BACKSLASH:
                return quote + 1
            self._step(p)
            run = quote - 1
            while data[run - 1] == BACKSLASH:
                run -= 1
            if (quote - run) % 2 == 0:
                return quote + 1
            p = quote + 1
        return self._string_end_masked(p)

    def _string_end_masked(self, p: int) -> int:
        """`_string_end` from `p`, not inside a run of backslashes, where quotes are escaped
        often: windows (from `MASK_BYTES`, doubling, each moved to end outside a run of
        backslashes) are copied with their escaped backslashes and quotes blotted out and
        searched for a quote left (C-speed, whatever the number of escapes)."""
        data, size, window = self.data, len(self.data), MASK_BYTES
        while True:
            self._step(p)
            end = min(size, p + window)
            while end < size and data[end - 1] == BACKSLASH:
                end += 1
            masked = data[p:end].replace(b"\\\\", b"__").replace(b'\\"', b"__")
            quote = masked.find(b'"')
            if quote >= 0:
                return p + quote + 1
            if end == size:
                raise MalformedError("a string is not closed")
            p, window = end, min(window * 2, 64 * MASK_BYTES)

    def _step(self, p: int) -> None:
        """One more search step, at `p`; too many for the bytes walked end the scan."""
        self.steps += 1
        if self.step_bytes and self.steps > FREE_STEPS + p // self.step_bytes:
            raise UnscannableError("too many strings, brackets or escapes to skip cheaply")


def _decoded(raw: bytes) -> str:
    """A JSON string's contents (without quotes) as `json.loads` decodes them."""
    text = raw.decode("utf-8", "surrogatepass")
    return SCANSTRING(text + '"', 0, True)[0]
