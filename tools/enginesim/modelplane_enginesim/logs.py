"""One log line per event on stderr, `key=value` style (no `logging` set-up needed).

Guarantees: every line starts with `ts=<UTC time> event=<name>`; a value with
spaces, quotes or `=` is written as a JSON string, so each line splits back into
its fields; writing never raises (a closed stderr drops the line).
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO


def format_line(event: str, fields: dict[str, object], now: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    millis = int((now % 1) * 1000)
    parts = [f"ts={stamp}.{millis:03d}Z", f"event={event}"]
    for key, value in fields.items():
        parts.append(f"{key}={_value(value)}")
    return " ".join(parts)


def _value(value: object) -> str:
    if value is None:
        return "null"
    text = value if isinstance(value, str) else str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


def log(event: str, stream: TextIO | None = None, **fields: object) -> None:
    out = stream if stream is not None else sys.stderr
    try:
        out.write(format_line(event, fields, time.time()) + "\n")
        out.flush()
    except (OSError, ValueError):
        pass
