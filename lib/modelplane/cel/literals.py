"""Decoding of CEL string and bytes literal tokens (quotes, raw prefix, escapes).

Guarantees: returns the literal's value exactly as the CEL spec defines it,
or raises ``ValueError`` for an invalid escape sequence.
"""

from __future__ import annotations

__all__ = ["decode_bytes", "decode_string"]

_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_HEX = frozenset("0123456789abcdefABCDEF")


def _strip(token: str) -> tuple[str, bool]:
    raw = token[0] in "rR"
    if raw:
        token = token[1:]
    quote = 3 if token[:3] in ('"""', "'''") else 1
    return token[quote:-quote], raw


def _units(body: str, as_bytes: bool) -> list[int | str]:
    """Split into pieces: str for text, int for a byte/code-point escape."""
    out: list[int | str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("dangling backslash in string literal")
        e = body[i + 1]
        if e in _SIMPLE:
            out.append(_SIMPLE[e])
            i += 2
        elif e in "xX":
            digits = body[i + 2 : i + 4]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise ValueError("invalid \\x escape in string literal")
            out.append(int(digits, 16))
            i += 4
        elif e in "uU":
            width = 4 if e == "u" else 8
            digits = body[i + 2 : i + 2 + width]
            if as_bytes or len(digits) != width or not set(digits) <= _HEX:
                raise ValueError(f"invalid \\{e} escape in literal")
            point = int(digits, 16)
            if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
                raise ValueError("invalid unicode code point in string literal")
            out.append(chr(point))
            i += 2 + width
        elif e in "0123":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not set(digits) <= set("01234567"):
                raise ValueError("invalid octal escape in string literal")
            out.append(int(digits, 8))
            i += 4
        else:
            raise ValueError(f"invalid escape sequence \\{e} in string literal")
    return out


def decode_string(token: str) -> str:
    body, raw = _strip(token)
    if raw:
        return body
    return "".join(p if isinstance(p, str) else chr(p) for p in _units(body, False))


def decode_bytes(token: str) -> bytes:
    body, raw = _strip(token[1:])
    if raw:
        return body.encode("utf-8")
    return b"".join(
        p.encode("utf-8") if isinstance(p, str) else bytes([p]) for p in _units(body, True)
    )
